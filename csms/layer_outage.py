"""Consumers that live through a channel-layer outage (Redis stopped or restarted) without a process restart.

Channels' consumer loop awaits ``channel_layer.receive`` beside the socket; when Redis goes away that call raises,
the exception ends the consumer (daphne then drops the WebSocket without running ``disconnect``: a station's
connection would never be recorded closed) and, one after the other, every consumer of the process. With this mixin
a failing receive is retried with backoff instead, the socket stays up, and once Redis answers again the consumer's
``layer_recovered`` hook runs before it listens again: channels-redis groups live in Redis and vanish with it, so
consumers that joined groups join them again there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("csms.layer")

RETRY_S = (0.5, 5.0)  # first and longest wait between two attempts while the layer is down


async def layer_ping(layer: Any) -> None:
    """Raise unless the channel layer's backend answers (channels-redis: PING on its first host)."""
    connection = getattr(layer, "connection", None)
    if connection is not None:
        await connection(0).ping()


class LayerOutageMixin:
    """Put first in the bases of an ``AsyncConsumer`` subclass; override ``layer_recovered`` to re-join groups."""

    channel_layer: Any
    channel_name: str
    _layer_receive: Callable[[], Awaitable[dict[str, Any]]]

    # AsyncConsumer.__call__ assigns ``self.channel_receive`` (the layer's receive for this consumer's channel) and
    # then awaits it in its loop: the property hands that loop the surviving version instead.
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._receive_surviving

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive = receive

    async def layer_recovered(self, *, failed_at: datetime) -> None:
        """Called once the channel layer answers again after failing since ``failed_at`` (when this consumer first saw
        it fail: what was sent to it before then may be lost, what was sent after Redis came back is not); may raise
        (then retried)."""

    async def _receive_surviving(self) -> dict[str, Any]:
        delay = RETRY_S[0]
        failing = False
        failed_at = datetime.now(UTC)
        while True:
            try:
                if failing:
                    await layer_ping(self.channel_layer)
                    await self.layer_recovered(failed_at=failed_at)
                    logger.info("channel layer back for %s", self.channel_name)
                    failing = False
                    delay = RETRY_S[0]
                return await self._layer_receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    failed_at = datetime.now(UTC)
                    logger.warning("channel layer receive failed for %s (%s); retrying", self.channel_name, exc)
                failing = True
                await asyncio.sleep(delay)
                delay = min(RETRY_S[1], delay * 2)
