"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and the channel layer (Redis in production) answer within 3 s each."""
    checks: dict[str, str] = {}

    def db_check() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    try:
        await asyncio.wait_for(sync_to_async(db_check, thread_sensitive=False)(), 3)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready", with the reason
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        layer = get_channel_layer()
        if layer is None:
            raise LookupError("no channel layer configured")
        channel = await layer.new_channel()
        token = uuid.uuid4().hex
        await layer.send(channel, {"type": "ready.check", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), 3)
        checks["channel_layer"] = "ok" if message.get("token") == token else "error: wrong message"
    except Exception as exc:
        checks["channel_layer"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
