"""The station's WebSocket consumer: the base OCPP-J consumer wired to the station path (connections, calls,
commands, message log, live updates)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from csms.dbpool import auth, database_unreachable, db
from csms.looplocal import per_loop
from csms.ocpp import frames, router
from csms.ocpp.consumer import SUBPROTOCOL, CallTimeout, ConnectionLost, OcppConsumer
from security.flusher import refusals_flush_soon
from security.limiter import ANY, limiter
from security.transport import transport_of

from . import calls, commands, connections, leases, lifecycle, message_log, writer
from .commands import secrets
from .live import SECTIONS_BY_CALL, publish_station_changed
from .models import CommandState

logger = logging.getLogger("csms.ocpp")

# Answered apart from the group-commit queue, each in its own transaction: still answered while the writer is
# saturated (a booting station must not wait behind the others' events; a heartbeat keeps the connection alive).
BYPASS_GROUP_COMMIT = frozenset({"BootNotification", "Heartbeat"})
# Messages that change what the dashboard shows of a station (heartbeats don't: they'd flood it).
LIVE_ACTIONS = frozenset({"BootNotification", "StatusNotification"})
# Overview figures (active sessions, power now) move when a session starts or ends; periodic meter updates are
# not pushed (too many at 1,000 stations).
LIVE_TRANSACTION_EVENTS = frozenset({"Started", "Ended"})
OUTCOME_RETRY_S = 2.0  # a command's outcome the database could not take is written again this often ...
OUTCOME_RETRY_FOR_S = 600.0  # ... for this long
OUTCOME_SETTLE_S = 5.0  # a station's next CALL waits at most this long for the outcomes of the replies before it
CLOSE_REPLACED = 4001  # private-use close code: a newer connection of the same identity took over


def _session_starts_or_ends(call: frames.Call) -> bool:
    return (
        call.action == "TransactionEvent"
        and isinstance(call.payload, dict)
        and call.payload.get("eventType") in LIVE_TRANSACTION_EVENTS
    )


class _CloseRecorder:
    """One per event loop: ended connections recorded in batches (connections.connections_close).

    The batch task does not belong to any consumer: when daphne gives up on a consumer still closing (its
    application close timeout, in a mass disconnect), the close is recorded all the same.
    """

    MAX_BATCH = 500
    RETRY_S = 2.0  # while the database is unreachable, the closes wait and are tried again this often

    def __init__(self) -> None:
        self.pending: list[tuple[int, int | None, asyncio.Future[None] | None]] = []
        self.task: asyncio.Task[None] | None = None

    async def record(self, connection_id: int, close_code: int | None) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.pending.append((connection_id, close_code, future))
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())
        await future

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[: self.MAX_BATCH], self.pending[self.MAX_BATCH :]
            try:
                await db(connections.connections_close)(closes=[(c, code) for c, code, _ in batch])
            except Exception as exc:
                if database_unreachable(exc):
                    # Kept until the database is back (the consumers do not wait for it): a close the database
                    # could not take is not left for the stale sweep, minutes later.
                    logger.warning("database unreachable: %d closed connections recorded later", len(batch))
                    self._done(batch)
                    self.pending.extend((c, code, None) for c, code, _ in batch)
                    await asyncio.sleep(self.RETRY_S)
                    continue
                logger.exception("could not record %d closed connections together; one by one", len(batch))
                for connection_id, close_code, _ in batch:
                    try:
                        await db(connections.connection_close)(connection_id=connection_id, close_code=close_code)
                    except Exception:  # the stale sweep (stations.mark_stale_offline) corrects it later
                        logger.exception("could not record the close of connection %s", connection_id)
            self._done(batch)

    @staticmethod
    def _done(batch: list[tuple[int, int | None, asyncio.Future[None] | None]]) -> None:
        for *_, future in batch:
            if future is not None and not future.done():
                future.set_result(None)


_close_recorder = per_loop(_CloseRecorder)


class _IdentityGate:
    """One per event loop: at most PER_IDENTITY handshakes of one identity in the database threads at a time, the
    others wait here, in the event loop. A flood against one station then holds two of the threads that carry every
    other station, and the attempts that waited meet the failure limiter's verdict before any database work."""

    PER_IDENTITY = 2  # a station has one connection; two let a reconnect overlap a handshake still finishing

    def __init__(self) -> None:
        self._gates: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, identity: str) -> AsyncIterator[None]:
        gate, users = self._gates.get(identity, (None, 0))
        if gate is None:
            gate = asyncio.Semaphore(self.PER_IDENTITY)
        self._gates[identity] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._gates[identity]
            if users <= 1:
                del self._gates[identity]
            else:
                self._gates[identity] = (gate, users - 1)


_identity_gate = per_loop(_IdentityGate)


class StationConsumer(OcppConsumer):
    _last_seen_written = 0.0
    _gone = False  # the connection closed: nothing more to take up

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The outcome recorders of the commands taken up, with the future of each one's reply.
        self._outcomes: dict[asyncio.Task[Any], asyncio.Future[Any]] = {}

    async def handshake(self, authorization: str | None) -> str:
        async with _identity_gate().hold(self.identity):
            return await self._handshake(authorization)

    async def _handshake(self, authorization: str | None) -> str:
        host = connections.client_host(self.remote_addr)
        if authorization is not None and limiter().address_blocked(host):
            # An address over its failure limit trying a password: refused before any database work (a flood).
            known = limiter().knows_identity(self.identity)  # else unbounded: any name could be sent
            connections.handshake_refusal_count(
                identity=self.identity if known else ANY,
                address=host,
                station_id=None,
                reason=connections.THROTTLED,
                throttled=True,
                logged=False,
            )
            self._connect_result = connections.ConnectResult(None, connections.THROTTLED, auth_refused=True)
            refusals_flush_soon()
            return connections.THROTTLED
        # One trip to the database for the decision and its record (a boot storm queues thousands of these).
        result = await db(connections.station_connect)(
            identity=self.identity,
            authorization=authorization,
            remote_addr=self.remote_addr,
            subprotocol=SUBPROTOCOL,
            channel_name=self.channel_name,
            transport=transport_of(self.scope),  # type: ignore[arg-type]
        )
        if result.check is not None:  # a legacy slow hash: checked in the auth threads, then one more trip
            verdict = await auth(connections.password_verify)(check=result.check)
            result = await db(connections.station_connect_checked)(
                check=result.check,
                verdict=verdict,
                remote_addr=self.remote_addr,
                subprotocol=SUBPROTOCOL,
                channel_name=self.channel_name,
            )
        if result.auth_refused:
            refusals_flush_soon()
        self._connect_result = result
        if result.opened is not None:
            self.station_id = result.opened.station_id
        return result.reason

    async def refused(self, reason: str) -> None:
        if getattr(self, "_connect_result", None) is not None:
            return  # recorded by station_connect
        await db(connections.connection_refused)(
            identity=self.identity, station=None, reason=reason, remote_addr=self.remote_addr
        )

    async def opened(self) -> None:
        opened = self._connect_result.opened
        assert opened is not None
        self.connection_id = opened.connection_id
        self.accepted = opened.accepted
        self.validation_mode = opened.validation_mode
        self._last_seen_written = time.monotonic()
        lifecycle.consumer_opened(self)  # a graceful shutdown closes it (stations/lifecycle.py)
        await publish_station_changed(station_id=opened.station_id, identity=self.identity)
        if opened.replaced_channel and opened.replaced_channel != self.channel_name:
            logger.info("station %s reconnected: closing its previous connection", self.identity)
            await self.channel_layer.send(
                opened.replaced_channel, {"type": "station.replaced", "connection_id": opened.connection_id}
            )

    async def closed(self, code: int) -> None:
        self._gone = True
        # Record the outcomes of the commands this connection took up first (answers that arrived just before the
        # close included): connection_close then fails only those it never saw.
        try:
            pending = set(self._tasks)  # the outcome recorders of the commands taken up (spawned by command_dispatch)
            if pending:
                await asyncio.wait(pending, timeout=10)
            assert self.connection_id is not None and self.station_id is not None  # only called once opened
            await _close_recorder().record(self.connection_id, code)
        finally:
            lifecycle.consumer_closed(self)
        await publish_station_changed(station_id=self.station_id, identity=self.identity)

    async def layer_recovered(self, *, failed_at: datetime) -> None:
        # Commands dispatched to this channel before the channel layer failed may have vanished with Redis; those
        # created since were either refused at send (Redis down) or sent after it came back (delivered): a consumer
        # recovers up to a backoff step after Redis does, and must not fail what reached it meanwhile.
        await db(commands.commands_fail_undelivered)(channel_name=self.channel_name, created_before=failed_at)

    def _last_seen_due(self, now: float) -> bool:
        return now - self._last_seen_written >= settings.CSMS_LAST_SEEN_RESOLUTION_S

    def can_answer_in_loop(self, route: router.Route, ctx: router.CallContext) -> bool:
        # A Heartbeat between last-seen writes has nothing to store (its log rows go to the buffered writer).
        return (
            not route.uses_db
            and not ctx.violations
            and message_log.buffered()
            and not self._last_seen_due(time.monotonic())
        )

    def payload_for_log(self, action: str, payload: Any) -> Any:
        return secrets.incoming_for_log(action, payload)

    def answer_in_loop(self, route: router.Route, ctx: router.CallContext, payload: dict[str, Any]) -> dict[str, Any]:
        return calls.call_answer_without_db(route=route, ctx=ctx, payload=payload)

    async def store_call(
        self, route: router.Route, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any]
    ) -> dict[str, Any]:
        if call.action in BYPASS_GROUP_COMMIT or not writer.enabled():
            return await super().store_call(route, ctx, call, payload)
        now = time.monotonic()
        touch = self._last_seen_due(now)
        work = calls.CallWork(route, ctx, call, payload, touch, log_in_transaction=not message_log.buffered())
        response = await writer.writer().commit(work)
        if touch:
            self._last_seen_written = now
        return response

    def handle_call(
        self, route: router.Route, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any]
    ) -> dict[str, Any]:
        now = time.monotonic()
        touch = self._last_seen_due(now)
        response = calls.call_commit(
            route=route,
            ctx=ctx,
            call=call,
            payload=payload,
            touch_last_seen=touch,
            log_in_transaction=not message_log.buffered(),
        )
        if touch:
            self._last_seen_written = now
        return response

    async def after_call(self, call: frames.Call, response: dict[str, Any]) -> None:
        if message_log.buffered() and message_log.enabled(is_error=False):
            self._log_buffered(calls.call_log_entries(call, response))
        if call.action == "BootNotification":
            self.accepted = response.get("status") == "Accepted"
        if self.station_id is None:
            return
        overview = call.action in LIVE_ACTIONS or _session_starts_or_ends(call)
        sections = SECTIONS_BY_CALL.get(call.action, frozenset())
        if call.action == "TransactionEvent" and not overview:
            sections = frozenset()  # only a start or an end changes what the sections show
        if overview or sections:
            await publish_station_changed(
                station_id=self.station_id, identity=self.identity, sections=sections, overview=overview
            )

    async def log_frames(self, entries: list[dict[str, Any]], is_error: bool) -> None:
        if not message_log.enabled(is_error=is_error):
            return
        if message_log.buffered():
            self._log_buffered(entries)
        else:
            await db(message_log.entries_write)(
                station_id=self.station_id, connection_id=self.connection_id, entries=entries, is_error=is_error
            )

    def _log_buffered(self, entries: list[dict[str, Any]]) -> None:
        message_log.writer().add(station_id=self.station_id, connection_id=self.connection_id, entries=entries)

    # --- channel-layer messages --------------------------------------------------------------------------------
    async def station_going_away(self, event: dict[str, Any]) -> None:
        """This process is stopping (stations/lifecycle.py): handled after the frame in hand, so a CALL being
        handled is answered first; the station reconnects, to another process behind the load balancer."""
        await self.close(code=leases.CLOSE_GOING_AWAY)

    async def station_replaced(self, event: dict[str, Any]) -> None:
        logger.info(
            "station %s: connection %s replaced by %s", self.identity, self.connection_id, event.get("connection_id")
        )
        await self.close(code=CLOSE_REPLACED)

    async def command_dispatch(self, event: dict[str, Any]) -> None:
        """An operator's command for this station (from any process): queue its CALL, never wait for it here."""
        command_id = event["command_id"]
        try:
            command = await db(commands.command_for_dispatch)(command_id=command_id)
        except DatabaseError as exc:
            if not database_unreachable(exc):
                raise
            # The database restarting: taken up once it answers, unless the connection closes first (its close,
            # recorded once the database is back, then fails the command).
            self.spawn(self._command_dispatch_later(event, time.monotonic() + OUTCOME_RETRY_FOR_S))
            return
        if command is None:
            return  # finished meanwhile (e.g. failed by a closing connection)
        # The request's secrets come in the channel message only; the stored (redacted) request is what is logged.
        future = self.enqueue_call(
            command.action,
            secrets.request_merge(command.request, event.get("secrets") or []),
            unique_id=command.message_id or str(command_id),
            log_payload=command.request,  # as stored: secrets [redacted]
            on_sent=lambda: db(commands.command_mark_sent)(command_id=command_id),
        )
        task = self.spawn(self._command_outcome(command_id, future))
        self._outcomes[task] = future
        task.add_done_callback(self._outcome_done)

    def _outcome_done(self, task: asyncio.Task[Any]) -> None:
        self._outcomes.pop(task, None)

    async def replies_settle(self) -> None:
        # A station's frames are handled in order: the outcome of a command it answered (a CALLERROR ending a
        # reservation, say) is committed before its next CALL is answered, so nothing it does next (a
        # TransactionEvent consuming the reservation, a retry) meets the command still "sent".
        answered = [task for task, future in self._outcomes.items() if future.done()]
        if answered:
            await asyncio.wait(answered, timeout=OUTCOME_SETTLE_S)

    async def _command_dispatch_later(self, event: dict[str, Any], deadline: float) -> None:
        await asyncio.sleep(OUTCOME_RETRY_S)
        if self._gone or time.monotonic() > deadline:
            return
        try:
            await self.command_dispatch(event)
        except Exception:
            logger.exception("station %s: could not take up command %s", self.identity, event.get("command_id"))

    async def _command_outcome(self, command_id: int, future: Any) -> None:
        outcome: dict[str, Any]
        try:
            reply = await future
        except CallTimeout as exc:
            outcome = {"state": CommandState.TIMED_OUT, "error_description": str(exc)}
        except ConnectionLost:
            outcome = {"state": CommandState.FAILED, "error_description": commands.CONNECTION_CLOSED}
        except Exception as exc:  # a send failure: the command must still end
            outcome = {"state": CommandState.FAILED, "error_description": f"could not send: {type(exc).__name__}"}
        else:
            if isinstance(reply, frames.CallError):
                outcome = {
                    "state": CommandState.FAILED,
                    "error_code": reply.code,
                    "error_description": reply.description,
                    "error_details": reply.details,
                }
            else:
                outcome = {"state": CommandState.ANSWERED, "response": reply.payload}
        deadline = time.monotonic() + OUTCOME_RETRY_FOR_S
        while True:
            try:
                await db(commands.command_finish)(command_id=command_id, **outcome)
                return
            except Exception as exc:
                # The database restarting: the outcome is kept and written once it is back, so the command does
                # not stay "sent" (the stale sweep would end it only much later, and as timed_out).
                if database_unreachable(exc) and time.monotonic() < deadline:
                    await asyncio.sleep(OUTCOME_RETRY_S)
                    continue
                logger.exception("station %s: could not record the outcome of command %s", self.identity, command_id)
                return
