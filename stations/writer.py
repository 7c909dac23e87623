"""The group-commit writer: one per event loop (daphne process). Station CALLs that store data wait here and are
applied many per database transaction (``calls.calls_commit_group``), in one database-thread call per group; each
CALL's future resolves only after the COMMIT of its group.

- a group takes what accumulated while the previous groups were committing (natural batching), up to
  ``CSMS_GROUP_COMMIT_MAX_BATCH``, after an optional ``CSMS_GROUP_COMMIT_WINDOW_MS``; at a low rate a CALL is its
  own group at once (no added latency);
- at most ``CSMS_GROUP_COMMIT_WRITERS`` groups in flight (never all the database threads: boots, heartbeats and
  handshakes bypass this queue and always find one);
- a station's CALLs stay in order: OCPP-J lets a station have one CALL outstanding and the consumer reads its next
  frame only once the last is answered, and a CALL of a station that already has one in a group in flight (two
  connections during a reconnect) waits for that group;
- bounded: past ``CSMS_GROUP_COMMIT_MAX_QUEUE`` waiting CALLs, a CALL is answered InternalError (logged and
  counted) and the station sends it again later.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from csms import metrics
from csms.dbpool import db
from csms.looplocal import per_loop
from csms.ocpp import errors

from . import calls

logger = logging.getLogger("csms.ocpp")


@dataclass(slots=True)
class _Waiting:
    work: calls.CallWork
    future: asyncio.Future[dict[str, Any]]


def enabled() -> bool:
    return settings.CSMS_GROUP_COMMIT_MAX_BATCH > 0


def _writers() -> int:
    return max(1, min(settings.CSMS_GROUP_COMMIT_WRITERS, settings.CSMS_DB_THREADS - 1))


class GroupWriter:
    def __init__(self) -> None:
        self.queue: deque[_Waiting] = deque()
        self.running = 0  # writer tasks (each commits one group at a time)
        self.in_flight: dict[int, int] = {}  # station id -> groups in flight holding one of its CALLs
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit(self, work: calls.CallWork) -> dict[str, Any]:
        """Queue ``work``; return its CALLRESULT payload once committed, or raise what its handler raised."""
        if len(self.queue) >= settings.CSMS_GROUP_COMMIT_MAX_QUEUE:
            metrics.GROUP_COMMIT_REFUSED.inc()
            logger.warning(
                "group commit queue full (%d CALLs): %s of station %s refused, to be sent again",
                len(self.queue),
                work.call.action,
                work.ctx.identity,
            )
            # OCPP SPEC-SILENT: no error code means "busy"; InternalError makes a station send a transaction
            # message again (MessageAttemptsTransactionEvent) and says nothing was stored.
            raise errors.InternalError("CSMS overloaded: nothing of this message was stored; send it again later")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.queue.append(_Waiting(work, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self.running < _writers() and self.queue:
            self.running += 1
            # A context of its own: not the log fields of the station whose CALL happened to start it.
            task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Waiting]:
        """The next group, in arrival order, without the CALLs of stations that have one in a group in flight."""
        group: list[_Waiting] = []
        deferred: list[_Waiting] = []
        limit = settings.CSMS_GROUP_COMMIT_MAX_BATCH
        while self.queue and len(group) < limit:
            waiting = self.queue.popleft()
            if waiting.future.done():  # the consumer went away (its task cancelled): nothing to answer
                continue
            if waiting.work.ctx.station_id in self.in_flight:
                deferred.append(waiting)
                continue
            group.append(waiting)
        self.queue.extendleft(reversed(deferred))
        return group

    async def _run(self) -> None:
        try:
            window = settings.CSMS_GROUP_COMMIT_WINDOW_MS
            while self.queue:
                if window > 0 and len(self.queue) < settings.CSMS_GROUP_COMMIT_MAX_BATCH:
                    await asyncio.sleep(window / 1000)
                group = self._take()
                if not group:
                    return  # only CALLs of stations in flight: the task committing theirs starts one after
                await self._commit(group)
        finally:
            # No restart here: what is left waits for a station in flight, whose task takes it after its commit.
            self.running -= 1

    async def _commit(self, group: list[_Waiting]) -> None:
        stations = {w.work.ctx.station_id for w in group}
        for station_id in stations:
            self.in_flight[station_id] = self.in_flight.get(station_id, 0) + 1
        try:
            outcomes = await db(calls.calls_commit_group)(works=[w.work for w in group])
        except BaseException as exc:  # the thread call itself failed (or this task was cancelled)
            if not isinstance(exc, Exception):
                for waiting in group:
                    waiting.future.cancel()
                raise
            logger.exception("group commit of %d CALLs failed", len(group))
            outcomes = [exc] * len(group)
        finally:
            for station_id in stations:
                left = self.in_flight[station_id] - 1
                if left:
                    self.in_flight[station_id] = left
                else:
                    del self.in_flight[station_id]
        for waiting, outcome in zip(group, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, Exception):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)


writer = per_loop(GroupWriter)
