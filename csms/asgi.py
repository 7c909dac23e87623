"""ASGI entry point: HTTP goes to Django, WebSockets to the station and dashboard consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csms.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from csms.asgi_urls import asgi_re_path  # noqa: E402
from csms.ocpp import schemas  # noqa: E402
from csms.routing import browser_urlpatterns, station_urlpatterns  # noqa: E402
from firmware.upload_asgi import with_uploads  # noqa: E402
from security.transport import TrustedProxyMiddleware, daphne_tls_scheme_install  # noqa: E402
from stations.lifecycle import daphne_lifecycle_install  # noqa: E402

schemas.warm_up()
daphne_tls_scheme_install()
daphne_lifecycle_install()  # the process's lease and graceful shutdown (stations/lifecycle.py)

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
