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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, models, transaction
from django.utils import timezone

from csms import fastorm, metrics
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


@dataclass(frozen=True, slots=True)
class Column:
    """A column the writer fills, from the model's field."""

    field: models.Field[Any, Any]
    attname: str  # the row's key
    name: str  # the database column
    db_default: bool  # a row without the key leaves the value to the database (the field's db_default)
    default: Any  # the value for a row without the key, unless made by default_factory
    default_factory: Callable[[], Any] | None  # a callable default (timezone.now), called per row
    max_length: int | None  # longer strings are cut to it


def _column(field: models.Field[Any, Any]) -> Column:
    factory = field.default if field.has_default() and callable(field.default) else None
    default = None if factory else field.get_default()  # the field's constant, or the ORM's "" / None
    db_default = field.has_db_default() and not field.has_default()
    assert field.column is not None  # a concrete field always has its column
    return Column(field, field.attname, field.column, db_default, default, factory, getattr(field, "max_length", None))


@cache
def columns(model: type[models.Model] = MessageLog) -> tuple[Column, ...]:
    """Every concrete column of the model but the auto primary key and generated ones: a column added to the model
    is written with its default (rows need not know it), not refused by a hand-kept list."""
    meta = model._meta
    return tuple(_column(f) for f in meta.concrete_fields if f is not meta.auto_field and not f.generated)


_MISSING = object()


def _value(column: Column, row: dict[str, Any]) -> Any:
    value = row.get(column.attname, _MISSING)
    if value is _MISSING:
        value = column.default if column.default_factory is None else column.default_factory()
    # Cut here, so that callers (the protocol layer: ids, actions, error texts from stations) need not know widths.
    if column.max_length is not None and type(value) is str and len(value) > column.max_length:
        value = value[: column.max_length]
    return value


def _copy_adapter(field: models.Field[Any, Any]) -> Callable[[Any], Any] | None:
    """How a value goes into COPY: psycopg adapts the Python values of the other fields as the ORM sends them."""
    if not isinstance(field, models.JSONField):
        return None
    if field.encoder is None:
        from psycopg.types.json import Jsonb

        return Jsonb
    return lambda value: field.get_db_prep_save(value, connection)


def _insert_adapter(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How a value goes into an INSERT on the other databases (SQLite): as ``save()`` prepares it (fastorm's
    preparer: the backend's adapter alone for a value of the field's own type)."""
    return fastorm.preparer(field, connection)


def _row_values(
    cols: tuple[Column, ...], adapter: Callable[[models.Field[Any, Any]], Callable[[Any], Any] | None] = _copy_adapter
) -> Callable[[dict[str, Any]], list[Any]]:
    """A row's values in the order of ``cols``: ``_value`` inlined, as it runs for every column of every row."""
    plan = [(c.attname, c.default, c.default_factory, c.max_length, adapter(c.field)) for c in cols]

    def values(row: dict[str, Any]) -> list[Any]:
        out = []
        for attname, default, factory, max_length, adapt in plan:
            value = row.get(attname, _MISSING)
            if value is _MISSING:
                value = default if factory is None else factory()
            if value is not None:
                if max_length is not None and type(value) is str and len(value) > max_length:
                    value = value[:max_length]
                elif adapt is not None:
                    value = adapt(value)
            out.append(value)
        return out

    return values


def _by_columns(
    model: type[models.Model], rows: list[dict[str, Any]]
) -> dict[tuple[Column, ...], list[dict[str, Any]]]:
    """The rows grouped by the columns they fill: a column the database fills (db_default) can only be left out
    of a statement, so one statement per set of such columns the rows give (a single one without them)."""
    every = columns(model)
    groups: dict[tuple[Column, ...], list[dict[str, Any]]] = {}
    if not any(c.db_default for c in every):
        groups[every] = rows
    else:
        for row in rows:
            key = tuple(c for c in every if not c.db_default or c.attname in row)
            groups.setdefault(key, []).append(row)
    return groups


def _insert_many(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """The other databases (SQLite, in the embedded default's process): one INSERT prepared once and run for every
    row (``executemany``), not an ORM bulk insert compiled field by field (most of the CPU of a heartbeat, measured
    2026-12-03)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        for cols, group in _by_columns(model, rows).items():
            names = ", ".join(connection.ops.quote_name(c.name) for c in cols)
            values = _row_values(cols, _insert_adapter)
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(cols))})", [values(r) for r in group]
            )


def _copy(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: one COPY for the whole batch (a tenth of the CPU of an ORM bulk insert, measured)."""
    groups = _by_columns(model, rows)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        for cols, group in groups.items():
            names = ", ".join(connection.ops.quote_name(c.name) for c in cols)
            statement = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
            values = _row_values(cols)
            with cursor.cursor.copy(statement) as copy:
                for row in group:
                    copy.write_row(values(row))


def _orm_row(model: type[models.Model], row: dict[str, Any]) -> dict[str, Any]:
    """The row's values for the model's constructor (cut as in COPY; absent ones left to the model's defaults)."""
    return {c.attname: _value(c, row) for c in columns(model) if c.attname in row}


def rows_write(rows: list[dict[str, Any]], *, model: type[models.Model] = MessageLog) -> None:
    """Sync: insert log rows (dicts of MessageLog values by attname: ``station_id``, ``action``...) in batches.
    Keys that are not columns are ignored; a string longer than its column is cut to it.

    A row the database refuses (its station or connection deleted since its frame arrived, an invalid value) must
    not block the others, nor be retried forever: then the rows are written one by one and the refused dropped.
    """
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy(model, rows)
            else:
                for start in range(0, len(rows), BATCH_ROWS):
                    _insert_many(model, rows[start : start + BATCH_ROWS])
        return
    except (IntegrityError, DataError):
        pass
    refused = 0
    for row in rows:
        try:
            with transaction.atomic():
                model._default_manager.create(**_orm_row(model, row))
        except (IntegrityError, DataError):
            refused += 1
    if refused:
        logger.warning("message log: %d rows dropped (station or connection deleted meanwhile, or invalid)", refused)
    else:  # the batch failed but no row alone did: a writer bug, not the rows
        logger.warning("message log: a batch of %d rows was refused but each row alone was taken", len(rows))


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
        self._trim()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _trim(self) -> None:
        """Keep the newest ``max_pending`` rows: the oldest go first (counted, and logged at the first drop and
        every thousand)."""
        overflow = len(self._rows) - self.max_pending
        if overflow <= 0:
            return
        for _ in range(overflow):
            self._rows.popleft()
        if self.dropped == 0 or (self.dropped + overflow) // 1000 > self.dropped // 1000:
            logger.error("message log: %d rows dropped so far (the database is not taking them)",
                         self.dropped + overflow)  # fmt: skip
        self.dropped += overflow
        metrics.MESSAGE_LOG_DROPPED.inc(overflow)

    async def _run(self) -> None:
        retry_s = 0.0
        while self._rows:
            await asyncio.sleep(retry_s or self.flush_s)
            retry_s = 0.0 if await self._write_pending() else min(max(2 * retry_s, 0.5), RETRY_MAX_S)

    async def _write_pending(self) -> bool:
        metrics.MESSAGE_LOG_PENDING.set(len(self._rows))
        while self._rows:
            batch = [self._rows.popleft() for _ in range(min(BATCH_ROWS, len(self._rows)))]
            try:
                await db(rows_write)(batch)
            except Exception:
                logger.exception("message log: could not write %d rows; retrying", len(batch))
                self._rows.extendleft(reversed(batch))  # keep their order for the next attempt
                self._trim()  # rows added while the batch was out count against the bound too
                metrics.MESSAGE_LOG_PENDING.set(len(self._rows))
                return False
        metrics.MESSAGE_LOG_PENDING.set(0)
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

    # The interface's declaration has no ``self``, so mypy reads the arguments shifted by one.
    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]


# --- Retention (beat job stations.message_log_retention) ------------------------------------------------------
def message_log_prune(*, older_than_days: int, batch_rows: int, pause_s: float, max_batches: int = 10_000) -> int:
    """Delete the log rows older than ``older_than_days``, ``batch_rows`` at a time: each batch picks its oldest
    rows by the created_at index and deletes them by primary key in its own short transaction, and the job sleeps
    ``pause_s`` between batches, so station traffic (its log rows, its CALLs' data) writes in between and is never
    locked out for long, on PostgreSQL or on the embedded SQLite. Stops after ``max_batches`` (the next run goes on).
    Returns how many rows were deleted."""
    import time

    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            MessageLog.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("pk", flat=True)[:batch_rows]
        )
        if not ids:
            break
        with transaction.atomic():
            deleted += MessageLog.objects.filter(pk__in=ids)._raw_delete(MessageLog.objects.db)
        if len(ids) < batch_rows:
            break
        time.sleep(pause_s)
    return deleted
