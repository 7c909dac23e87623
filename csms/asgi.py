"""ASGI entry point: HTTP goes to Django, WebSockets to the station and dashboard consumers."""

import logging
import os
import resource

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csms.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from csms.asgi_urls import asgi_re_path  # noqa: E402
from csms.gctune import gc_tune  # noqa: E402
from csms.ocpp import schemas  # noqa: E402
from csms.routing import browser_urlpatterns, station_urlpatterns  # noqa: E402
from firmware.upload_asgi import with_uploads  # noqa: E402
from security.transport import TrustedProxyMiddleware, daphne_tls_scheme_install  # noqa: E402
from stations.lifecycle import daphne_lifecycle_install  # noqa: E402

schemas.warm_up()
daphne_tls_scheme_install()
daphne_lifecycle_install()  # the process's lease and graceful shutdown (stations/lifecycle.py)

# Every station is an open socket: the usual soft limit of 1,024 open files would cap a process near 1,000 stations.
OPEN_FILES_WANTED = 11000  # 10,000 stations and the process's own files


def raise_open_file_limit() -> int:
    """Take the hard limit of open files as the soft one; say so when even that is below 10,000 stations' worth."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < OPEN_FILES_WANTED:
        logging.getLogger("csms").warning(
            "open-file limit %d: this process holds at most ~%d stations (raise the hard limit: ulimit -Hn, "
            "LimitNOFILE=, docker --ulimit nofile=)",
            soft,
            max(0, soft - 100),
        )
    return soft


raise_open_file_limit()

# Forwarded headers (address, scheme, client certificate) only from CSMS_TRUSTED_PROXIES: security/transport.py.
application = TrustedProxyMiddleware(
    ProtocolTypeRouter(
        {
            # Stations' uploads (streamed, size-limited) beside Django; the rest is Django.
            "http": with_uploads(django_asgi_app),
            # Stations send no Origin we could check: they authenticate with identity + password. Browsers get
            # session auth and an Origin check (against cross-site WebSocket hijacking).
            "websocket": URLRouter(
                [
                    *station_urlpatterns,
                    asgi_re_path(
                        r"^ws/", AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(browser_urlpatterns)))
                    ),
                ]
            ),
        }
    )
)

# Last: what is loaded by now lives as long as the process, and no garbage collection walks it again.
gc_tune(freeze=settings.CSMS_GC_FREEZE, threshold0=settings.CSMS_GC_THRESHOLD0)
