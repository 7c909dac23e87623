"""The bare baseline: a Channels consumer on the same stack (daphne, Channels, Redis layer) answering every CALL
with one fixed CALLRESULT. No validation, no database. Serve it with ``daphne bench.echo:application``.

The CSMS's figures are reported as ratios to this server's: the difference is what our protocol layer,
validation and persistence cost.
"""

from __future__ import annotations

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csms.settings")
django_asgi_app = get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from csms.asgi_urls import asgi_re_path  # noqa: E402

# Valid enough for every CALL the simulator sends: BootNotification reads status/interval, the rest ignore it.
FIXED = {"currentTime": "2026-01-01T00:00:00.000Z", "interval": 300, "status": "Accepted"}


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept(subprotocol="ocpp2.0.1")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = json.loads(text_data or "null")
        if isinstance(frame, list) and len(frame) >= 3 and frame[0] == 2:
            await self.send(json.dumps([3, frame[1], FIXED]))


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,  # /healthz, like the CSMS, so the harness waits for both the same way
        "websocket": URLRouter([asgi_re_path(r"^ocpp/(?P<identity>[^/]+)/?$", EchoConsumer.as_asgi())]),
    }
)
