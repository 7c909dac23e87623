"""Writes the refused handshakes counted in memory (security.limiter.refusals) as aggregated security events, at
most ``CSMS_SECURITY_EVENT_FLUSH_MS`` later, from a task of the event loop (a crash loses at most that window of
counts; station data is never held back)."""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from csms.dbpool import db
from csms.looplocal import per_loop

from . import services
from .limiter import refusals

logger = logging.getLogger(__name__)


class _Flusher:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while refusals:
            await asyncio.sleep(settings.CSMS_SECURITY_EVENT_FLUSH_MS / 1000)
            counts = refusals.take()
            if not counts:
                continue
            try:
                await db(services.handshake_refusals_record)(counts=counts)
            except Exception:
                logger.exception("could not record %d refused-handshake counts; retrying", len(counts))
                refusals.put_back(counts)


_flusher = per_loop(_Flusher)


def refusals_flush_soon() -> None:
    """Make sure the counts are written soon (call from the event loop after counting a refusal)."""
    _flusher().wake()
