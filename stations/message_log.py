"""The message log's writer: rows are buffered in the process and written in batches, off the CALL's critical path.

Writing two log rows inside every CALL's transaction was the largest single cost of the hot path (bench profile).
The log is a diagnostic record, not station data: a station's CALLRESULT still waits for its data to be committed,
while its log rows are written at most ``CSMS_MESSAGE_LOG_FLUSH_MS`` later, many in one INSERT. The timestamp of
a row is the instant the frame was handled, not the instant of the write.

# OCPP SPEC-SILENT (durability of the log): a crash of the process loses at most the last flush interval of log
rows (a clean shutdown writes them). ``CSMS_MESSAGE_LOG_FLUSH_MS=0`` writes them in the CALL's own transaction
instead, slower but crash-proof.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from csms.dbpool import db
from csms.looplocal import per_loop

from .models import MessageLog

logger = logging.getLogger(__name__)

BATCH_ROWS = 1000  # rows per INSERT
RETRY_MAX_S = 10.0  # back-off ceiling while the database refuses the writes


def buffered() -> bool:
    return settings.CSMS_MESSAGE_LOG_FLUSH_MS > 0


def enabled(*, is_error: bool) -> bool:
    mode = settings.CSMS_MESSAGE_LOG
    return mode == "all" or (mode == "errors" and is_error)


_COLUMNS = (
    "station_id", "connection_id", "direction", "message_type", "message_id", "action", "payload", "raw",
    "error_code", "error_description", "created_at",
)  # fmt: skip


def _copy(rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: one COPY for the whole batch (a tenth of the CPU of an ORM bulk insert, measured)."""
    from psycopg.types.json import Jsonb

    statement = f"COPY {MessageLog._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for row in rows:
            payload = row.get("payload")
            copy.write_row((
                row.get("station_id"), row.get("connection_id"), row["direction"], row.get("message_type"),
                row.get("message_id", ""), row.get("action", ""), None if payload is None else Jsonb(payload),
                row.get("raw", ""), row.get("error_code", ""), row.get("error_description", ""),
                row.get("created_at") or timezone.now(),
            ))  # fmt: skip


def rows_write(rows: list[dict[str, Any]]) -> None:
    """Sync: insert log rows (dicts of MessageLog fields) in batches.

    A row the database refuses (its station or connection deleted since its frame arrived, a value too long) must
    not block the others, nor be retried forever: then the rows are written one by one and the refused dropped.
    """
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy(rows)
            else:
                MessageLog.objects.bulk_create((MessageLog(**row) for row in rows), batch_size=BATCH_ROWS)
        return
    except (IntegrityError, DataError):
        pass
    refused = 0
    for row in rows:
        try:
            with transaction.atomic():
                MessageLog.objects.create(**row)
        except (IntegrityError, DataError):
            refused += 1
    logger.warning("message log: %d rows dropped (station or connection deleted meanwhile, or invalid)", refused)


def entries_write(
    *, station_id: int | None, connection_id: int | None, entries: list[dict[str, Any]], is_error: bool
) -> None:
    """Sync: write a station's log rows now (the unbuffered mode, ``CSMS_MESSAGE_LOG_FLUSH_MS=0``)."""
    if not enabled(is_error=is_error):
        return
    rows_write([{"station_id": station_id, "connection_id": connection_id, **entry} for entry in entries])


class MessageLogWriter:
    """One per event loop (daphne process). ``add`` never blocks; a background task does the writing."""

    def __init__(self, *, flush_s: float, max_pending: int) -> None:
        self.flush_s = flush_s
        self.max_pending = max_pending
        self.dropped = 0  # rows thrown away because the database refused writes for too long
        self._rows: deque[dict[str, Any]] = deque()
        self._task: asyncio.Task[None] | None = None

    def add(self, *, station_id: int | None, connection_id: int | None, entries: list[dict[str, Any]]) -> None:
        now = timezone.now()
        for entry in entries:
            self._rows.append({"station_id": station_id, "connection_id": connection_id, "created_at": now, **entry})
        overflow = len(self._rows) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._rows.popleft()
            if self.dropped == 0 or (self.dropped + overflow) // 1000 > self.dropped // 1000:
                logger.error("message log: %d rows dropped so far (the database is not taking them)",
                             self.dropped + overflow)
            self.dropped += overflow
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        retry_s = 0.0
        while self._rows:
            await asyncio.sleep(retry_s or self.flush_s)
            retry_s = 0.0 if await self._write_pending() else min(max(2 * retry_s, 0.5), RETRY_MAX_S)

    async def _write_pending(self) -> bool:
        while self._rows:
            batch = [self._rows.popleft() for _ in range(min(BATCH_ROWS, len(self._rows)))]
            try:
                await db(rows_write)(batch)
            except Exception:
                logger.exception("message log: could not write %d rows; retrying", len(batch))
                self._rows.extendleft(reversed(batch))  # keep their order for the next attempt
                return False
        return True

    async def flush(self) -> None:
        """Write everything buffered now (at the server's shutdown)."""
        if self._rows:
            await self._write_pending()


def _new_writer() -> MessageLogWriter:
    created = MessageLogWriter(
        flush_s=settings.CSMS_MESSAGE_LOG_FLUSH_MS / 1000, max_pending=settings.CSMS_MESSAGE_LOG_MAX_PENDING
    )
    _flush_at_shutdown(created)
    return created


# The writer of the running event loop, created on first use (with a flush at the server's shutdown).
writer = per_loop(_new_writer)


def _flush_at_shutdown(target: MessageLogWriter) -> None:
    """Under daphne (a Twisted reactor on asyncio), write the buffered rows before the process exits."""
    try:
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
    except ImportError:  # pragma: no cover - not under daphne
        return
    if not getattr(reactor, "running", False):
        return

    def before_shutdown() -> Deferred[None]:
        return Deferred.fromFuture(asyncio.ensure_future(target.flush()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
