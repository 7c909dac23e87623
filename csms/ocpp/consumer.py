"""Base OCPP-J consumer: handshake, framing, validation, dispatch, error mapping and the CSMS->CS outbox.

Subclasses supply persistence through the hooks at the bottom (``handshake``, ``opened``, ``handle_call``, ...);
this module knows no models.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from csms import logs, metrics
from csms.dbpool import database_unreachable, db
from csms.layer_outage import LayerOutageMixin

from . import errors, frames, router, schemas

logger = logging.getLogger("csms.ocpp")

SUBPROTOCOL = "ocpp2.0.1"
# Private-use close code (daphne sends only 1000 and 3000-4999): the database is unreachable, reconnect later (1013,
# "Try Again Later" in the IANA registry, would say the same but daphne refuses to send it).
CLOSE_DATABASE_UNREACHABLE = 4503


class CallTimeout(Exception):
    """The station did not answer a CSMS->CS CALL in time."""


class ConnectionLost(Exception):
    """The socket closed while a CSMS->CS CALL was queued or outstanding."""


@dataclass(slots=True)
class _Outgoing:
    call: frames.Call
    future: asyncio.Future[frames.CallResult | frames.CallError]
    timeout_s: float
    on_sent: Callable[[], Awaitable[None]] | None = None
    log_payload: dict[str, Any] | None = None  # what the message log keeps, when not the payload (secrets)


# The ignore: the mixin's channel_receive is a property over the stubs' attribute (csms/layer_outage.py).
class OcppConsumer(LayerOutageMixin, AsyncWebsocketConsumer):  # type: ignore[misc]
    identity: str = ""
    station_id: int | None = None
    connection_id: int | None = None
    accepted: bool = False
    validation_mode: str = "strict"

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def connect(self) -> None:
        self.identity = unquote(self.scope["url_route"]["kwargs"]["identity"])
        self.remote_addr = _client_addr(self.scope)
        self._outbox: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._in_flight: _Outgoing | None = None
        self._outbox_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        offered = self.scope.get("subprotocols") or []
        if SUBPROTOCOL not in offered:
            await self.refuse(f"subprotocol {SUBPROTOCOL} not offered (offered: {', '.join(offered) or 'none'})")
            return
        try:
            reason = await self.handshake(_header(self.scope, b"authorization"))
        except DatabaseError as exc:
            if not database_unreachable(exc):
                raise
            # Nothing can be decided or recorded: refused, the station retries later (nothing to record it in).
            logger.warning("station %r from %s: database unreachable, refused", self.identity, self.remote_addr)
            await self.close()
            return
        if reason:
            await self.refuse(reason)
            return
        # Recorded before the 101 goes out: once a station is told it is connected, the CSMS knows it too.
        await self.opened()
        await self.accept(subprotocol=SUBPROTOCOL)
        self._outbox_task = asyncio.create_task(self._outbox_loop())
        logger.info("station %s connected from %s", self.identity, self.remote_addr)

    async def refuse(self, reason: str) -> None:
        logger.warning("refused station %r from %s: %s", self.identity, self.remote_addr, reason)
        try:
            await self.refused(reason)
        except Exception:
            logger.exception("could not record refused connection of %r", self.identity)
        await self.close()

    async def disconnect(self, code: int) -> None:
        if self._outbox_task is not None:
            self._outbox_task.cancel()
        lost = ConnectionLost(f"connection closed (code {code}) before the station answered")
        pending = [self._in_flight] if self._in_flight else []
        while not self._outbox.empty():
            pending.append(self._outbox.get_nowait())
        for item in pending:
            if not item.future.done():
                item.future.set_exception(lost)
        if self.connection_id is not None:
            logger.info("station %s disconnected (code %s)", self.identity, code)
            await self.closed(code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' own dispatch first closes "old" database connections of the event loop thread, by a hop to the
        # shared sync thread, for every frame: a queue all stations wait in. This consumer never uses the ORM in the
        # loop thread; its database work runs through db(), whose worker threads look after their connections.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- frames from the station -----------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self._reply_error(
                frames.UNKNOWN_MESSAGE_ID,
                errors.RpcFrameworkError("Binary frames are not supported; use text"),
                raw=f"<{len(bytes_data or b'')} binary bytes>",
            )
            return
        if len(text_data) > settings.CSMS_MAX_FRAME_BYTES or len(text_data.encode()) > settings.CSMS_MAX_FRAME_BYTES:
            await self._reply_error(
                frames.message_id_hint(text_data),
                errors.FormatViolation(f"Frame exceeds {settings.CSMS_MAX_FRAME_BYTES} bytes"),
                raw=text_data[:1000],
            )
            return
        try:
            frame = frames.parse(text_data)
        except frames.FrameError as exc:
            await self._reply_error(exc.unique_id, exc.error, raw=text_data[:10000])
            return
        if isinstance(frame, frames.Call):
            await self._on_call(frame)
        else:
            await self._on_reply(frame)

    async def _on_call(self, call: frames.Call) -> None:
        started = time.monotonic()
        logs.station_context(identity=self.identity, unique_id=call.unique_id, action=call.action)
        await self.replies_settle()
        try:
            route = router.route_for(call.action)
            if not self.accepted and call.action != "BootNotification":
                raise errors.SecurityError(
                    f"{call.action} refused: the station is not accepted (BootNotification first)"
                )
            payload, violations = self.validate_request(call.action, call.payload)
            ctx = router.CallContext(
                station_id=self.station_id or 0,
                identity=self.identity,
                unique_id=call.unique_id,
                action=call.action,
                connection_id=self.connection_id,
                violations=violations,
            )
            if self.can_answer_in_loop(route, ctx):
                response = self.answer_in_loop(route, ctx, payload)
            else:
                response = await self.store_call(route, ctx, call, payload)
        except errors.OcppError as exc:
            await self._reply_error(call.unique_id, exc, call=call)
            return
        except DatabaseError as exc:
            if settings.CSMS_DB_UNREACHABLE_POLICY == "close" and database_unreachable(exc):
                # OCPP SPEC-SILENT: what a CSMS does while its database is down. A CALLERROR makes a station retry
                # a TransactionEvent only MessageAttemptsTransactionEvent times, then drop it; without an answer
                # and without a connection it queues its messages and resends them after reconnecting.
                logger.warning(
                    "database unreachable handling %s from %s: closing the connection, unanswered",
                    call.action,
                    self.identity,
                )
                await self.close(code=CLOSE_DATABASE_UNREACHABLE)
                return
            logger.exception("database error handling %s from %s", call.action, self.identity)
            await self._reply_error(
                call.unique_id,
                errors.InternalError("Database error; nothing of this message was stored"),
                call=call,
            )
            return
        except Exception as exc:
            logger.exception("handler for %s from %s failed", call.action, self.identity)
            await self._reply_error(
                call.unique_id, errors.InternalError(f"Internal error: {type(exc).__name__}"), call=call
            )
            return
        await self.send(frames.CallResult(call.unique_id, response).to_json())
        action = metrics.action_label(call.action)
        metrics.OCPP_MESSAGES.labels(action=action, outcome="result").inc()
        metrics.OCPP_HANDLER_SECONDS.labels(action=action).observe(time.monotonic() - started)
        await self.after_call(call, response)

    def validate_request(self, action: str, payload: Any) -> tuple[dict[str, Any], list[schemas.Violation]]:
        if self.validation_mode == "lenient":
            return schemas.validate_lenient(action, "Request", payload)
        schemas.validate(action, "Request", payload)
        return payload, []

    def payload_for_log(self, action: str, payload: Any) -> Any:
        """A station's CALL payload as the message log keeps it; subclasses remove the secrets it may carry."""
        return payload

    async def _reply_error(
        self, unique_id: str, exc: errors.OcppError, *, call: frames.Call | None = None, raw: str = ""
    ) -> None:
        error = frames.CallError.from_exception(unique_id, exc)
        logger.warning(
            "station %s: %s %s (%s)",
            self.identity,
            error.code,
            error.description,
            call.action if call else "unparsed frame",
        )
        await self.send(error.to_json())
        metrics.OCPP_CALL_ERRORS.labels(code=error.code).inc()
        if call is not None:
            metrics.OCPP_MESSAGES.labels(action=metrics.action_label(call.action), outcome="error").inc()
        entries: list[dict[str, Any]] = []
        if call is not None:
            entries.append(
                {
                    "direction": "in",
                    "message_type": 2,
                    "message_id": call.unique_id,
                    "action": call.action,
                    "payload": self.payload_for_log(call.action, _jsonable(call.payload)),
                    "error_code": error.code,
                    "error_description": error.description,
                }
            )
        else:
            entries.append(
                {
                    "direction": "in",
                    "message_id": unique_id,
                    "raw": raw,
                    "error_code": error.code,
                    "error_description": error.description,
                }
            )
        entries.append(
            {
                "direction": "out",
                "message_type": 4,
                "message_id": unique_id,
                "action": call.action if call else "",
                "payload": {"code": error.code, "description": error.description, "details": error.details},
                "error_code": error.code,
                "error_description": error.description,
            }
        )
        await self._log(entries, is_error=True)

    async def _log(self, entries: list[dict[str, Any]], *, is_error: bool) -> None:
        try:
            await self.log_frames(entries, is_error)
        except Exception:
            logger.exception("could not write the message log for %s", self.identity)

    # --- CSMS -> station calls (one outstanding at a time, OCPP-J) -----------------------------------------------
    def enqueue_call(
        self,
        action: str,
        payload: dict[str, Any],
        timeout_s: float | None = None,
        unique_id: str | None = None,
        on_sent: Callable[[], Awaitable[None]] | None = None,
        log_payload: dict[str, Any] | None = None,
    ) -> asyncio.Future[frames.CallResult | frames.CallError]:
        """Queue a CALL to the station; the future resolves with its CallResult/CallError.

        ``on_sent`` is awaited once the frame is on the wire.
        Never await the future inside a channel-layer handler: the reply arrives through the same consumer loop.
        """
        future: asyncio.Future[frames.CallResult | frames.CallError] = asyncio.get_running_loop().create_future()
        call = frames.Call(unique_id or str(uuid.uuid4()), action, payload)
        self._outbox.put_nowait(
            _Outgoing(call, future, timeout_s or settings.CSMS_CALL_TIMEOUT_S, on_sent, log_payload)
        )
        return future

    async def _outbox_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if item.future.done():
                continue
            self._in_flight = item
            try:
                await self.send(item.call.to_json())
                await self._log(
                    [
                        {
                            "direction": "out",
                            "message_type": 2,
                            "message_id": item.call.unique_id,
                            "action": item.call.action,
                            "payload": item.call.payload if item.log_payload is None else item.log_payload,
                        }
                    ],
                    is_error=False,
                )
                if item.on_sent is not None:
                    try:
                        await item.on_sent()
                    except Exception:
                        logger.exception("station %s: on_sent hook of %s failed", self.identity, item.call.action)
                await asyncio.wait_for(asyncio.shield(item.future), item.timeout_s)
            except TimeoutError:
                if not item.future.done():
                    item.future.set_exception(
                        CallTimeout(f"no answer to {item.call.action} within {item.timeout_s:g} s")
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not item.future.done():
                    item.future.set_exception(exc)
            finally:
                self._in_flight = None

    async def _on_reply(self, reply: frames.CallResult | frames.CallError) -> None:
        item = self._in_flight
        is_error = isinstance(reply, frames.CallError)
        entry: dict[str, Any] = {
            "direction": "in",
            "message_type": 4 if is_error else 3,
            "message_id": reply.unique_id,
            "action": item.call.action if item and item.call.unique_id == reply.unique_id else "",
            "payload": (
                {"code": reply.code, "description": reply.description, "details": reply.details}
                if isinstance(reply, frames.CallError)
                else _jsonable(reply.payload)
            ),
        }
        if isinstance(reply, frames.CallError):
            entry |= {"error_code": reply.code, "error_description": reply.description}
        if item is None or item.call.unique_id != reply.unique_id:
            logger.warning("station %s: reply to unknown message id %r dropped", self.identity, reply.unique_id)
            entry["error_description"] = "reply to an unknown message id: dropped"
            await self._log([entry], is_error=True)
            return
        await self._log([entry], is_error=is_error)
        if not item.future.done():
            item.future.set_result(reply)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run a coroutine beside the consumer loop (e.g. waiting for a station's reply), keeping a reference."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- hooks for subclasses ----------------------------------------------------------------------------------
    async def replies_settle(self) -> None:
        """Called before a CALL from the station is handled: finish what the replies it sent before need done."""

    async def handshake(self, authorization: str | None) -> str:
        """Return "" to accept the connection, or the reason to refuse it. Set ``station_id``."""
        raise NotImplementedError

    async def refused(self, reason: str) -> None:
        """Record a refused handshake."""

    async def opened(self) -> None:
        """Record the accepted connection (set ``connection_id``, ``accepted``, ``validation_mode``)."""

    async def closed(self, code: int) -> None:
        """Record the end of the connection."""

    def handle_call(
        self, route: router.Route, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Sync, in a database thread: run the route's handler and commit; return the CALLRESULT payload."""
        raise NotImplementedError

    async def store_call(
        self, route: router.Route, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Run :meth:`handle_call` and return once committed (by default alone, in a database thread; a subclass
        may commit it together with other stations' CALLs). Raises what the handler raised."""
        return await db(self.handle_call)(route, ctx, call, payload)

    def can_answer_in_loop(self, route: router.Route, ctx: router.CallContext) -> bool:
        """Whether this CALL can be answered in the event loop (nothing to write): no thread hop, no transaction."""
        return False

    def answer_in_loop(self, route: router.Route, ctx: router.CallContext, payload: dict[str, Any]) -> dict[str, Any]:
        """Sync, in the event loop, only when :meth:`can_answer_in_loop`: the CALLRESULT payload. Must not block."""
        raise NotImplementedError

    async def after_call(self, call: frames.Call, response: dict[str, Any]) -> None:
        """Called once the CALLRESULT is sent."""

    async def log_frames(self, entries: list[dict[str, Any]], is_error: bool) -> None:
        """Record message-log rows (frames outside a CALL's own transaction: errors, CSMS->CS calls, replies)."""


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _client_addr(scope: Mapping[str, Any]) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}"[:64] if client else ""


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (dict, list, str, int, float, bool)) or value is None else repr(value)
