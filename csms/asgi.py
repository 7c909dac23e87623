"""ASGI entry point: HTTP goes to Django, WebSockets to the station (and dashboard) consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csms.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from csms.ocpp import schemas  # noqa: E402
from csms.routing import websocket_urlpatterns  # noqa: E402

schemas.warm_up()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Stations do not send Origin headers we could check; they authenticate with identity + password.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
