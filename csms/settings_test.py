"""Settings for the test suite: real PostgreSQL and Redis (``make test`` exports their URLs).

Each checkout gets its own test database name and each run its own channel-layer prefix, so that several
checkouts (or CI and a developer) can run the suite on one machine at once.
"""

import hashlib
import os
import uuid
from pathlib import Path

_root = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CSMS_TEST_DB_NAME", "test_csms_" + hashlib.sha1(_root.encode()).hexdigest()[:10])
os.environ.setdefault("CSMS_CHANNEL_PREFIX", "csmstest-" + uuid.uuid4().hex[:10])
os.environ.setdefault("CSMS_LAST_SEEN_RESOLUTION_S", "0")
# Jobs run in process during tests (the servers under test too): no worker to start, nothing left in Redis.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# The webhook tests deliver to a receiver on 127.0.0.1 (tests/security override this to check the refusal).
os.environ.setdefault("CSMS_WEBHOOK_ALLOW_PRIVATE_URLS", "1")
# Refused-handshake counts written within 20 ms on the live servers, before the test's tables are truncated (as the
# message log: a late write racing the TRUNCATE deadlocks it).
os.environ.setdefault("CSMS_SECURITY_EVENT_FLUSH_MS", "20")
# The suite's fixtures use short station passwords; tests/security checks the minimum length.
os.environ.setdefault("CSMS_STATION_PASSWORD_MIN_LENGTH", "1")

# The CSMS's CA of the test suite (generated once, the servers under test share it), apart from make run's var/ca/.
os.environ.setdefault("CSMS_CA_DIR", str(Path(_root) / "var" / "test-ca"))

from .settings import *  # noqa: E402,F403

# Users' passwords hashed with few PBKDF2 iterations in the test process (tests/hashers.py): the same algorithm,
# so the live servers verify them; station passwords and the legacy-hash tests are unchanged.
PASSWORD_HASHERS = [
    "tests.hashers.QuickPBKDF2PasswordHasher",
    *(h for h in PASSWORD_HASHERS if h != "django.contrib.auth.hashers.PBKDF2PasswordHasher"),  # noqa: F405
]
