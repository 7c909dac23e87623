"""CSMS settings, read from the environment.

With no environment the CSMS runs on embedded defaults (SQLite in WAL mode under ``var/``, an in-process channel
layer, Celery tasks run eagerly in process) so that ``make run`` works on a fresh machine. With ``DATABASE_URL`` and
``REDIS_URL`` it uses PostgreSQL and Redis. Every ``CSMS_*`` setting is documented in the README.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from csms import sqlite as csms_sqlite

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CSMS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_choice(name: str, default: str, choices: set[str]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {sorted(choices)}")
    return value


DEBUG = env_bool("DEBUG", False)
# CSMS_ENV=production refuses to start with DEBUG or without a real SECRET_KEY.
CSMS_ENV = env_choice("CSMS_ENV", "development", {"development", "production"})
_DEV_SECRET = "dev-insecure-" + "x" * 40
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if CSMS_ENV == "production":
    if DEBUG:
        raise ImproperlyConfigured("CSMS_ENV=production refuses to start with DEBUG on")
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("CSMS_ENV=production needs SECRET_KEY (at least 32 characters, not the default)")
elif not SECRET_KEY:
    # Development: a per-checkout random key kept under var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = key_file.read_text().strip()

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csms",
    "stations",
    "transactions",
    "devicemodel",
    "security",
    "smartcharging",
    "firmware",
    "webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "csms.urls"
ASGI_APPLICATION = "csms.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CSMS_DB_CONN_MAX_AGE", 60))}
    # Off by default: the check is a round trip per station message. A connection broken by a database restart
    # fails one message (InternalError, the station retries) and is then replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("CSMS_DB_CONN_HEALTH_CHECKS", False)
    if os.environ.get("CSMS_TEST_DB_NAME"):
        DATABASES["default"]["TEST"] = {"NAME": os.environ["CSMS_TEST_DB_NAME"]}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "csms.sqlite3"),
            "OPTIONS": {
                # WAL lets the dashboard read while a station's write is in flight; the other pragmas and what
                # they trade: csms/sqlite.py (CSMS_SQLITE_SYNCHRONOUS, CSMS_SQLITE_PRAGMAS). IMMEDIATE avoids
                # "database is locked" upgrades from read to write locks.
                "init_command": csms_sqlite.init_command(csms_sqlite.pragmas(os.environ)),
                "transaction_mode": "IMMEDIATE",
                "timeout": csms_sqlite.BUSY_TIMEOUT_S,
            },
            # Persistent (None) unless CSMS_DB_CONN_MAX_AGE says otherwise: a new SQLite connection re-reads the
            # whole schema and runs the pragmas, milliseconds of CPU that closing after every station message
            # (Django's default 0) spent on each one. A local file has no server to time the connection out.
            "CONN_MAX_AGE": env_int("CSMS_DB_CONN_MAX_AGE", 0) if os.environ.get("CSMS_DB_CONN_MAX_AGE") else None,
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels / Redis / Celery --------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CSMS_CHANNEL_PREFIX = os.environ.get("CSMS_CHANNEL_PREFIX", "csms")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # socket_timeout None: redis-py 8 otherwise drops consumers that sit idle on BLPOP.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": CSMS_CHANNEL_PREFIX,
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died under it (OOM, SIGKILL of a pool child) goes back to the queue instead of being
# acknowledged as failed: every task is idempotent (tasks take ids, load fresh state), so running it again is safe.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "csms")
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "stations-mark-stale-offline": {"task": "stations.mark_stale_offline", "schedule": 60.0},
    "stations-commands-expire-stale": {"task": "stations.commands_expire_stale", "schedule": 60.0},
    "transactions-local-lists-sync": {"task": "transactions.local_lists_sync_all", "schedule": 300.0},
    "transactions-reservations-expire": {"task": "transactions.reservations_expire", "schedule": 30.0},
    "webhooks-deliver-due": {"task": "webhooks.deliver_due", "schedule": 30.0},
    "devicemodel-reports-expire": {"task": "devicemodel.reports_expire", "schedule": 60.0},
}
# Firmware rollouts: the state machine's beat step (waves, retries, maintenance windows are state in the DB).
CSMS_ROLLOUT_ADVANCE_INTERVAL_S = float(os.environ.get("CSMS_ROLLOUT_ADVANCE_INTERVAL_S") or 10)
CELERY_BEAT_SCHEDULE["firmware-rollout-advance"] = {
    "task": "firmware.rollout_advance",
    "schedule": CSMS_ROLLOUT_ADVANCE_INTERVAL_S,
}

# --- Jobs: broker redelivery, beat jobs, heartbeats (csms/jobs.py) ---------------------------------------------
# Redis redelivers a task that a worker took but never acknowledged (acks late: the worker died) after this long.
# Every countdown the code uses is shorter (csms.jobs.later: at most half of it); longer waits (webhook retries,
# nightly reports) are state in the database that beat sweeps pick up. A task may run at most half of it too
# (CELERY_TASK_TIME_LIMIT), so a running task is never redelivered beside itself.
CSMS_CELERY_VISIBILITY_TIMEOUT_S = env_int("CSMS_CELERY_VISIBILITY_TIMEOUT_S", 3600)
CSMS_CELERY_MAX_COUNTDOWN_S = CSMS_CELERY_VISIBILITY_TIMEOUT_S // 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CSMS_CELERY_VISIBILITY_TIMEOUT_S}
CELERY_TASK_TIME_LIMIT = CSMS_CELERY_VISIBILITY_TIMEOUT_S // 2
# Beat records its heartbeat and sends the worker's every this many seconds; the dashboard shows a process alive
# when it was seen within CSMS_JOBS_ALIVE_S.
CSMS_JOBS_HEARTBEAT_S = env_int("CSMS_JOBS_HEARTBEAT_S", 15)
CSMS_JOBS_ALIVE_S = env_int("CSMS_JOBS_ALIVE_S", 60)
CELERY_BEAT_SCHEDULER = "csms.beat.Scheduler"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Message log: rows older than this many days are deleted by an hourly beat job, in batches of
# CSMS_MESSAGE_LOG_RETENTION_BATCH rows with CSMS_MESSAGE_LOG_RETENTION_PAUSE_MS between them (each batch is a
# short transaction: station traffic writes between them). 0: kept forever.
CSMS_MESSAGE_LOG_RETENTION_DAYS = env_int("CSMS_MESSAGE_LOG_RETENTION_DAYS", 30)
CSMS_MESSAGE_LOG_RETENTION_BATCH = env_int("CSMS_MESSAGE_LOG_RETENTION_BATCH", 2000)
CSMS_MESSAGE_LOG_RETENTION_PAUSE_MS = env_int("CSMS_MESSAGE_LOG_RETENTION_PAUSE_MS", 50)
CSMS_MESSAGE_LOG_RETENTION_EVERY_S = 3600
# Nightly base report: empty (default) off; FullInventory, ConfigurationInventory or SummaryInventory sends that
# GetBaseReport once per night (UTC day), from CSMS_NIGHTLY_BASE_REPORT_HOUR_UTC on, to every online Accepted station.
CSMS_NIGHTLY_BASE_REPORT = os.environ.get("CSMS_NIGHTLY_BASE_REPORT", "").strip()
if CSMS_NIGHTLY_BASE_REPORT not in {"", "FullInventory", "ConfigurationInventory", "SummaryInventory"}:
    raise ImproperlyConfigured(
        f"CSMS_NIGHTLY_BASE_REPORT={CSMS_NIGHTLY_BASE_REPORT!r}: expected FullInventory, ConfigurationInventory, "
        "SummaryInventory or empty"
    )
CSMS_NIGHTLY_BASE_REPORT_HOUR_UTC = env_int("CSMS_NIGHTLY_BASE_REPORT_HOUR_UTC", 2)
# How often beat runs the stale-station sweep (stations silent for 2 heartbeat intervals + CSMS_STALE_GRACE_S).
CELERY_BEAT_SCHEDULE["stations-mark-stale-offline"]["schedule"] = float(env_int("CSMS_STALE_SWEEP_S", 60))
CELERY_BEAT_SCHEDULE |= {
    "csms-jobs-heartbeat": {
        "task": "csms.jobs_heartbeat",
        "schedule": float(CSMS_JOBS_HEARTBEAT_S),
        "options": {"expires": float(CSMS_JOBS_HEARTBEAT_S)},
    },
    "stations-message-log-retention": {
        "task": "stations.message_log_retention",
        "schedule": float(CSMS_MESSAGE_LOG_RETENTION_EVERY_S),
    },
    "devicemodel-nightly-base-report": {"task": "devicemodel.nightly_base_report", "schedule": 600.0},
}

# --- Auth, i18n, static -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    # Station passwords only (long random machine secrets; see security/hashers.py), never users'.
    "security.hashers.StationPasswordHasher",
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it even before collectstatic
# Serve app and project static files straight from their folders too (make run needs no collectstatic step).
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

if CSMS_ENV == "production":
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    # X-Forwarded-Proto reaches Django only from CSMS_TRUSTED_PROXIES (security.transport removes it otherwise).
    # Browsers reach production over TLS (the terminator in front of daphne): remember it, and send plain-HTTP
    # page requests to https. Not the probes' and stations' own HTTP endpoints (health, metrics, file uploads),
    # which may be plain on the internal network; WebSocket handshakes never pass the redirect.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$", r"^files/"]
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading commits the whole domain to HTTPS in browsers for months: the operator's call, off by default
    # (and its deploy-check reminder silenced while it is off).
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- REST API -------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("CSMS_API_PAGE_SIZE", 50),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Throttling per user (token or session) and per client address for anonymous calls (the token endpoint).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("CSMS_API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("CSMS_API_THROTTLE_USER", "1200/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CSMS API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RegistrationStatusEnum": "stations.models.RegistrationStatus",
        "IdTokenTypeEnum": "transactions.models.IdTokenType",
        "WebhookEventEnum": "webhooks.models.WebhookEvent",
        "MessageStateEnum": "stations.models.MessageState",
        "DisplayMessageReportStateEnum": "stations.models.DisplayMessageReportState",
        "CustomerInformationStateEnum": "transactions.models.CustomerInformationState",
        # Display messages and variable monitors share one choice set (csms / reported): one enum.
        "CsmsOrReportedSourceEnum": "stations.models.DisplayMessageSource",
        "SecurityEventSourceEnum": "security.models.SecurityEventSource",
    },
}
# CDR export (/api/v1/transactions/export.csv|json): rows fetched from the database per round trip.
CSMS_CDR_EXPORT_CHUNK_ROWS = env_int("CSMS_CDR_EXPORT_CHUNK_ROWS", 2000)
# id-token CSV import: most rows accepted in one file.
CSMS_ID_TOKEN_IMPORT_MAX_ROWS = env_int("CSMS_ID_TOKEN_IMPORT_MAX_ROWS", 10000)
# Webhooks: receiver timeout, retries with exponential backoff (BACKOFF_S * 2^(attempt-1), capped), and how long
# a process caches the set of subscribed events (a new subscription takes effect everywhere within that time).
CSMS_WEBHOOK_TIMEOUT_S = env_int("CSMS_WEBHOOK_TIMEOUT_S", 10)
CSMS_WEBHOOK_MAX_ATTEMPTS = env_int("CSMS_WEBHOOK_MAX_ATTEMPTS", 10)
CSMS_WEBHOOK_BACKOFF_S = env_int("CSMS_WEBHOOK_BACKOFF_S", 30)
CSMS_WEBHOOK_BACKOFF_MAX_S = env_int("CSMS_WEBHOOK_BACKOFF_MAX_S", 3600)
CSMS_WEBHOOK_CACHE_S = env_int("CSMS_WEBHOOK_CACHE_S", 10)
# Webhook URLs on loopback, private, link-local, multicast or reserved addresses are refused (when saved and again
# at each delivery, after resolving the host) unless this is on: a webhook must not become a way into the LAN.
CSMS_WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("CSMS_WEBHOOK_ALLOW_PRIVATE_URLS", False)
# Longest `wait` (seconds) a command POST may ask for.
CSMS_COMMAND_MAX_WAIT_S = env_int("CSMS_COMMAND_MAX_WAIT_S", 120)
# An active session whose station has been offline this long is shown as "station offline since ..." (pages, API).
CSMS_SESSION_OFFLINE_NOTICE_S = env_int("CSMS_SESSION_OFFLINE_NOTICE_S", 300)
# Device-model reports: a report job with no answer or part for this long is marked timed_out (beat job).
CSMS_REPORT_TIMEOUT_S = env_int("CSMS_REPORT_TIMEOUT_S", 600)
# NotifyEvent events whose monitor's severity is at most this (OCPP: 0 Danger, 1 HardwareFailure, 2 SystemFailure,
# 3 Critical, 4 Error, 5 Alert, 6 Warning, 7 Notice, 8 Informational, 9 Debug) are raised as alerts and sent as
# the station.event_alert webhook; -1: none.
CSMS_EVENT_ALERT_SEVERITY = env_int("CSMS_EVENT_ALERT_SEVERITY", 2)
# CustomerInformation with clear=true, accepted by the station: also anonymise the CSMS's own records of that id
# token (pseudonym instead of the token, descriptions cleared; energy, times and cost kept for billing law).
CSMS_CUSTOMER_CLEAR_ANONYMISES = env_bool("CSMS_CUSTOMER_CLEAR_ANONYMISES", True)
# An anonymising clear also takes the id token off the local lists the CSMS manages for stations.
CSMS_CUSTOMER_CLEAR_LOCAL_LIST = env_bool("CSMS_CUSTOMER_CLEAR_LOCAL_LIST", True)

# --- Tariffs and cost (transactions/tariffs.py) ---------------------------------------------------------------
# Time zone of the tariffs' time-of-day bands (IANA name; one for the whole CSMS until sites carry their own).
CSMS_TARIFF_TIME_ZONE = os.environ.get("CSMS_TARIFF_TIME_ZONE", "UTC")
# Interval of the CostUpdated job: active sessions' running cost refreshed, CostUpdated sent when it changed; 0 off.
CSMS_COST_UPDATE_INTERVAL_S = env_int("CSMS_COST_UPDATE_INTERVAL_S", 300)
# Tariff text for the station's display (idTokenInfo.personalMessage of Authorize and TransactionEvent Started);
# fields {name} {currency} {price_per_kwh} {price_per_hour} {idle_price_per_hour} {session_fee}; empty: no text.
CSMS_TARIFF_TEXT_TEMPLATE = os.environ.get(
    "CSMS_TARIFF_TEXT_TEMPLATE",
    "{price_per_kwh} {currency}/kWh, {price_per_hour} {currency}/h charging, {idle_price_per_hour} {currency}/h idle"
    ", {session_fee} {currency} per session",
)
if CSMS_COST_UPDATE_INTERVAL_S > 0:
    CELERY_BEAT_SCHEDULE["transactions-cost-updates"] = {
        "task": "transactions.cost_updates_send",
        "schedule": float(CSMS_COST_UPDATE_INTERVAL_S),
    }

# Per-process leases (stations/leases.py, csms/lifecycle.py): each daphne process renews its lease every third of
# CSMS_PROCESS_LEASE_S; once a lease has run out (the process was killed) the live processes end what it left (its
# connections recorded closed, its stations offline, its commands in flight failed). A SIGTERMed process answers
# the CALLs it is handling, writes its buffered log rows and closes its stations' sockets (1001, going away),
# giving up after CSMS_SHUTDOWN_TIMEOUT_S (under its supervisor's stop timeout, 20 s in make run).
CSMS_PROCESS_LEASE_S = float(os.environ.get("CSMS_PROCESS_LEASE_S") or 30)
CSMS_SHUTDOWN_TIMEOUT_S = float(os.environ.get("CSMS_SHUTDOWN_TIMEOUT_S") or 10)

# Threads running the stations' database work in each daphne process (each holds one database connection).
# Garbage collector of a daphne process (csms/gctune.py): freeze what is loaded at start (no full collection walks
# it again: each one paused the event loop ~100 ms), and the youngest generation's threshold (CPython's is 700; at
# 10,000 stations that ran 32 full collections of up to 2.2 s in five minutes, 50,000 ran 3 of under 0.1 s).
CSMS_GC_FREEZE = env_bool("CSMS_GC_FREEZE", True)
CSMS_GC_THRESHOLD0 = env_int("CSMS_GC_THRESHOLD0", 50_000)
CSMS_DB_THREADS = env_int("CSMS_DB_THREADS", min(32, (os.cpu_count() or 1) + 4))
# A station's CALL met with the database unreachable: "close" its connection unanswered (it queues and resends
# after reconnecting: nothing lost) or answer "error" (InternalError; a station drops a TransactionEvent after
# MessageAttemptsTransactionEvent of those).
CSMS_DB_UNREACHABLE_POLICY = env_choice("CSMS_DB_UNREACHABLE_POLICY", "close", {"close", "error"})
# Group commit (stations/writer.py): the CALLs that store data are applied up to this many per database transaction
# (0: each CALL in its own transaction), by at most CSMS_GROUP_COMMIT_WRITERS transactions in flight per process
# (capped at CSMS_DB_THREADS - 1: a thread stays free for boots, heartbeats and handshakes). A group gathers what
# arrived while the previous ones committed, after waiting CSMS_GROUP_COMMIT_WINDOW_MS more (0: no wait).
CSMS_GROUP_COMMIT_MAX_BATCH = env_int("CSMS_GROUP_COMMIT_MAX_BATCH", 64)
CSMS_GROUP_COMMIT_WRITERS = env_int("CSMS_GROUP_COMMIT_WRITERS", 4)
CSMS_GROUP_COMMIT_WINDOW_MS = env_int("CSMS_GROUP_COMMIT_WINDOW_MS", 0)
# CALLs waiting for a group, per process; past it a CALL is answered InternalError (the station retries later).
CSMS_GROUP_COMMIT_MAX_QUEUE = env_int("CSMS_GROUP_COMMIT_MAX_QUEUE", 5000)

# --- Security (security/) -----------------------------------------------------------------------------------------
# Security event types raised as alerts (UI) and flagged critical in the security.event webhook. Default: the
# types the OCPP 2.0.1 security events list (Part 2, Appendices, its "Critical" column) marks critical; that
# appendix is not in the shared ocpp-docs (the list was checked against implementations that transcribe it).
CSMS_CRITICAL_SECURITY_EVENTS = frozenset(
    t.strip()
    for t in os.environ.get(
        "CSMS_CRITICAL_SECURITY_EVENTS",
        "FirmwareUpdated,SettingSystemTime,StartupOfTheDevice,ResetOrReboot,SecurityLogWasCleared,"
        "MemoryExhaustion,TamperDetectionActivated",
    ).split(",")
    if t.strip()
)
# Handshake failure limiter (per daphne process): an address with this many password failures within the window
# is refused unchecked; so is an address that already failed for an identity having this many failures. 0: off.
CSMS_AUTH_MAX_FAILURES = env_int("CSMS_AUTH_MAX_FAILURES", 10)
CSMS_AUTH_FAILURE_WINDOW_S = env_int("CSMS_AUTH_FAILURE_WINDOW_S", 60)
# Failed logins (dashboard and API token endpoint) per username and per address within the window (security/logins.py).
CSMS_LOGIN_MAX_FAILURES = env_int("CSMS_LOGIN_MAX_FAILURES", 5)
CSMS_LOGIN_FAILURE_WINDOW_S = env_int("CSMS_LOGIN_FAILURE_WINDOW_S", 900)
# Threads verifying slow (legacy PBKDF2) station password hashes, apart from the station path's database threads.
CSMS_AUTH_THREADS = env_int("CSMS_AUTH_THREADS", 2)
# Refused handshakes are counted in memory and written as aggregated security events at most this many ms later.
CSMS_SECURITY_EVENT_FLUSH_MS = env_int("CSMS_SECURITY_EVENT_FLUSH_MS", 2000)
# Shortest station password accepted when one is set (OCPP's BasicAuthPassword is 16 to 40 characters).
CSMS_STATION_PASSWORD_MIN_LENGTH = env_int("CSMS_STATION_PASSWORD_MIN_LENGTH", 16)
# Transport security (security/transport.py). Addresses or CIDRs of the proxies (TLS terminators) whose
# X-Forwarded-For/-Proto and X-SSL-Client-Verify/-Cert headers are believed; empty: none (the headers are dropped).
CSMS_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("CSMS_TRUSTED_PROXIES", "").split(",") if p.strip()]
# daphne's own TLS (`make run TLS=1`): the certificate chain and key it serves (PEM); generated self-signed under
# var/tls/ by `manage.py tls_selfsigned` when missing.
CSMS_TLS_CERT_FILE = os.environ.get("CSMS_TLS_CERT_FILE", str(VAR_DIR / "tls" / "server.crt"))
CSMS_TLS_KEY_FILE = os.environ.get("CSMS_TLS_KEY_FILE", str(VAR_DIR / "tls" / "server.key"))
# Station password rotation (security/rotation.py): length of the generated BasicAuthPassword (16 to 40).
CSMS_PASSWORD_ROTATION_LENGTH = env_int("CSMS_PASSWORD_ROTATION_LENGTH", 32)

# --- Certificates: the CSMS's CA, CSR policy, Plug & Charge (security/ca.py, security/certificates.py) ------------
# The CA signing station certificates: key and certificate PEM files. Empty: generated once under var/ca/ (mode 0600).
CSMS_CA_DIR = Path(os.environ.get("CSMS_CA_DIR", VAR_DIR / "ca"))
CSMS_CA_KEY_PATH = os.environ.get("CSMS_CA_KEY_PATH", "")
CSMS_CA_CERT_PATH = os.environ.get("CSMS_CA_CERT_PATH", "")
# The CRL of revoked station certificates (PEM), rewritten at each revocation and by a daily beat job; nginx reads it.
CSMS_CA_CRL_PATH = os.environ.get("CSMS_CA_CRL_PATH", "") or str(CSMS_CA_DIR / "crl.pem")
CSMS_CA_CRL_VALIDITY_DAYS = env_int("CSMS_CA_CRL_VALIDITY_DAYS", 7)
# Organisation (O) of a generated CA; a CSR must carry this O when CSMS_CSR_ORGANIZATION is set (empty: any O).
CSMS_CA_ORGANIZATION = os.environ.get("CSMS_CA_ORGANIZATION", "CSMS")
CSMS_CSR_ORGANIZATION = os.environ.get("CSMS_CSR_ORGANIZATION", "")
# Key policy of a CSR: RSA keys of at least this many bits, EC keys on one of these curves; nothing else.
CSMS_CSR_MIN_RSA_BITS = env_int("CSMS_CSR_MIN_RSA_BITS", 2048)
CSMS_CSR_EC_CURVES = frozenset(
    c.strip() for c in os.environ.get("CSMS_CSR_EC_CURVES", "secp256r1,secp384r1,secp521r1").split(",") if c.strip()
)
CSMS_CERT_VALIDITY_DAYS = env_int("CSMS_CERT_VALIDITY_DAYS", 365)
# The renewal job asks a station for a new CSR (TriggerMessage) this many days before its certificate expires.
CSMS_CERT_RENEW_BEFORE_DAYS = env_int("CSMS_CERT_RENEW_BEFORE_DAYS", 30)
# Plug & Charge: an external V2G PKI (V2G CSRs, Get15118EVCertificate) and an OCSP responder; empty: none.
CSMS_V2G_PKI_URL = os.environ.get("CSMS_V2G_PKI_URL", "").rstrip("/")
CSMS_OCSP_RESPONDER_URL = os.environ.get("CSMS_OCSP_RESPONDER_URL", "")
CSMS_PKI_TIMEOUT_S = env_int("CSMS_PKI_TIMEOUT_S", 5)
CELERY_BEAT_SCHEDULE |= {
    "security-certificates-renew": {"task": "security.certificates_renew_due", "schedule": 3600.0},
    "security-crl-refresh": {"task": "security.crl_refresh", "schedule": 86400.0},
}

# --- OCPP ---------------------------------------------------------------------------------------------------------
# What happens to a station identity the CSMS does not know: refuse the handshake, register it as Pending
# (an operator accepts it later), or register and accept it.
CSMS_UNKNOWN_STATION_POLICY = env_choice("CSMS_UNKNOWN_STATION_POLICY", "reject", {"reject", "pending", "accept"})
CSMS_HEARTBEAT_INTERVAL_S = env_int("CSMS_HEARTBEAT_INTERVAL_S", 300)
# Interval sent with a Pending/Rejected BootNotification answer: when the station should boot again.
CSMS_BOOT_RETRY_INTERVAL_S = env_int("CSMS_BOOT_RETRY_INTERVAL_S", 60)
# Seconds the CSMS waits for a station's answer to a CSMS->CS CALL.
CSMS_CALL_TIMEOUT_S = env_int("CSMS_CALL_TIMEOUT_S", 30)
# Frames larger than this are answered with FormatViolation and not parsed.
CSMS_MAX_FRAME_BYTES = env_int("CSMS_MAX_FRAME_BYTES", 256 * 1024)
# Message log: every frame ("all"), only errors and frames that caused one ("errors"), or nothing ("none").
CSMS_MESSAGE_LOG = env_choice("CSMS_MESSAGE_LOG", "all", {"all", "errors", "none"})
# Log rows are buffered and written in batches at most this many ms after their frame (off the CALL's critical
# path; a crash loses at most this window of log rows). 0: written in the CALL's own transaction (slower).
CSMS_MESSAGE_LOG_FLUSH_MS = env_int("CSMS_MESSAGE_LOG_FLUSH_MS", 200)
# Log rows held in memory while the database refuses them; beyond this the oldest are dropped (and counted).
CSMS_MESSAGE_LOG_MAX_PENDING = env_int("CSMS_MESSAGE_LOG_MAX_PENDING", 100_000)
# Default validation mode for new stations: "strict" rejects any schema violation, "lenient" processes
# messages whose violations are tolerable (unknown properties, over-long strings, odd timestamps) and records them.
CSMS_DEFAULT_VALIDATION_MODE = env_choice("CSMS_DEFAULT_VALIDATION_MODE", "strict", {"strict", "lenient"})
# last_seen_at is written at most this often per connection (every frame would be a DB write).
CSMS_LAST_SEEN_RESOLUTION_S = env_int("CSMS_LAST_SEEN_RESOLUTION_S", 30)
# A station silent for 2 heartbeat intervals plus this grace is marked offline (its server process died).
CSMS_STALE_GRACE_S = env_int("CSMS_STALE_GRACE_S", 120)

# --- Authorization (transactions app) ------------------------------------------------------------------------------
# Answer for an idToken the CSMS does not know (Authorize and TransactionEvent): "unknown" (default: status Unknown,
# the station refuses), "invalid" (status Invalid), or "accept" (status Accepted: free charging for everyone).
# Case-insensitive.
CSMS_UNKNOWN_ID_TOKEN_POLICY = env_choice("CSMS_UNKNOWN_ID_TOKEN_POLICY", "unknown", {"unknown", "invalid", "accept"})
# Vendor ids whose DataTransfer is accepted and stored without a registered handler (comma-separated). Other
# vendors without a handler (stations.datatransfer) are answered UnknownVendorId.
CSMS_DATA_TRANSFER_ACCEPT_VENDORS = frozenset(
    v.strip() for v in os.environ.get("CSMS_DATA_TRANSFER_ACCEPT_VENDORS", "").split(",") if v.strip()
)
# Modules imported at startup that register DataTransfer vendor handlers (@data_transfer_handler), comma-separated.
CSMS_DATA_TRANSFER_MODULES = tuple(
    m.strip() for m in os.environ.get("CSMS_DATA_TRANSFER_MODULES", "").split(",") if m.strip()
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "csms.logs.JsonFormatter"},
    },
    # CSMS_LOG_FORMAT=json: one JSON object per line with the station, message id and action of the station path.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_choice("CSMS_LOG_FORMAT", "plain", {"plain", "json"}),
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("CSMS_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
# The base URL at which stations reach the CSMS's own file server (firmware downloads, log uploads): what stations
# can reach, not the bind address. URLs handed to stations are short token URLs under it (OCPP caps them at 512).
CSMS_FILE_SERVER_BASE_URL = os.environ.get("CSMS_FILE_SERVER_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Files and log requests (firmware/fileserver.py, firmware/ftp.py, firmware/logs.py) ---------------------------
# Uploaded files go to STORAGES["default"] (FileSystemStorage under MEDIA_ROOT unless set otherwise).
MEDIA_ROOT = Path(os.environ.get("CSMS_MEDIA_ROOT", VAR_DIR / "media"))
# Largest file a station may upload into one slot (HTTP PUT/POST and FTP); over it: 413 / 552, nothing stored.
CSMS_UPLOAD_MAX_BYTES = int(os.environ.get("CSMS_UPLOAD_MAX_BYTES", str(100 * 1024 * 1024)))
# How long an upload URL stays valid, on top of the station's own retries x retryInterval of the GetLog.
CSMS_UPLOAD_SLOT_TTL_S = int(os.environ.get("CSMS_UPLOAD_SLOT_TTL_S", "3600"))
CSMS_FTP_BIND = os.environ.get("CSMS_FTP_BIND", "127.0.0.1")
CSMS_FTP_PORT = int(os.environ.get("CSMS_FTP_PORT", "2121"))
# What stations reach, e.g. ftp://files.example.com:21 (default: the host of CSMS_FILE_SERVER_BASE_URL, FTP port).
CSMS_FTP_PUBLIC_URL = os.environ.get("CSMS_FTP_PUBLIC_URL", "")
CSMS_FTP_PASSIVE_PORTS = os.environ.get("CSMS_FTP_PASSIVE_PORTS", "30000-30009")
CSMS_FTP_MASQUERADE_ADDRESS = os.environ.get("CSMS_FTP_MASQUERADE_ADDRESS", "")
CSMS_FTP_INCOMING_DIR = Path(os.environ.get("CSMS_FTP_INCOMING_DIR", VAR_DIR / "ftp-incoming"))
CELERY_BEAT_SCHEDULE["firmware-log-requests-expire"] = {"task": "firmware.log_requests_expire", "schedule": 60.0}
# Firmware: how long a download URL stays valid beyond the retrieve time and the station's retries; how long a
# rollout station may take from UpdateFirmware to a final status; how long installed stations are watched for the
# BootNotification that confirms their new version.
CSMS_FIRMWARE_URL_VALID_S = env_int("CSMS_FIRMWARE_URL_VALID_S", 86400)
CSMS_ROLLOUT_STATION_TIMEOUT_S = env_int("CSMS_ROLLOUT_STATION_TIMEOUT_S", 86400)
CSMS_ROLLOUT_CONFIRM_WINDOW_S = env_int("CSMS_ROLLOUT_CONFIRM_WINDOW_S", 7 * 86400)
# --- Sites and load management (smartcharging/sites.py) ----------------------------------------------------------
# Decimal amperes as strings in the environment ("6", "6.5").
CSMS_SITE_MIN_CURRENT_A = float(os.environ.get("CSMS_SITE_MIN_CURRENT_A", "6"))
CSMS_SITE_FALLBACK_LIMIT_A = float(os.environ.get("CSMS_SITE_FALLBACK_LIMIT_A", "0"))
CSMS_SITE_RECOMPUTE_DEBOUNCE_S = float(os.environ.get("CSMS_SITE_RECOMPUTE_DEBOUNCE_S", "1"))
CSMS_SITE_PROFILE_TTL_S = env_int("CSMS_SITE_PROFILE_TTL_S", 900)
CSMS_SITE_TX_STACK_LEVEL = env_int("CSMS_SITE_TX_STACK_LEVEL", 1)
CSMS_SITE_FALLBACK_STACK_LEVEL = env_int("CSMS_SITE_FALLBACK_STACK_LEVEL", 0)
CSMS_SITE_UNDERDRAW_THRESHOLD_A = float(os.environ.get("CSMS_SITE_UNDERDRAW_THRESHOLD_A", "1"))
CSMS_SITE_UNDERDRAW_HEADROOM_A = float(os.environ.get("CSMS_SITE_UNDERDRAW_HEADROOM_A", "2"))
CELERY_BEAT_SCHEDULE["smartcharging-sites-sweep"] = {"task": "smartcharging.sites_sweep", "schedule": 30.0}
# --- Smart charging: charging profiles and composite schedules (smartcharging app, K-block) -------------------------
# OCPP times are UTC; Recurring profiles repeat in this IANA time zone (the site's local time), across DST changes.
CSMS_SMART_CHARGING_TIME_ZONE = os.environ.get("CSMS_SMART_CHARGING_TIME_ZONE", "UTC")
# A <-> W conversion of limits: W = A x voltage x phases (phases: the period's numberPhases, else this default).
CSMS_SMART_CHARGING_VOLTAGE_V = float(os.environ.get("CSMS_SMART_CHARGING_VOLTAGE_V", "230"))
CSMS_SMART_CHARGING_PHASES = env_int("CSMS_SMART_CHARGING_PHASES", 3)
# NotifyEVChargingNeeds is answered Accepted; on: the CSMS also sends a TxProfile giving the EV its maximum
# (capped by the CSMS's composite of the station's maximum and external limits).
CSMS_EV_CHARGING_NEEDS_SEND_PROFILE = env_bool("CSMS_EV_CHARGING_NEEDS_SEND_PROFILE", False)
# NotifyEVChargingSchedule: on, a schedule with a period above the CSMS's composite for the EVSE is answered Rejected
# (statusInfo LimitExceeded); off, every schedule is Accepted. Stored with the answer either way.
CSMS_EV_SCHEDULE_CHECK = env_bool("CSMS_EV_SCHEDULE_CHECK", True)
