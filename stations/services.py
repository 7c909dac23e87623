"""Actions on stations: handshake checks, connection bookkeeping, processing a station's CALL, registration."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from csms import fastorm
from csms.live import station_group
from csms.ocpp import actions, frames, router, schemas
from webhooks import services as webhooks

from . import message_log
from .models import (
    FINAL_COMMAND_STATES,
    BulkCommand,
    ChargingStation,
    Command,
    CommandState,
    Connection,
    ConnectionEvent,
    Direction,
    ProtocolViolation,
    RegistrationStatus,
    SecurityProfile,
    ValidationMode,
)

logger = logging.getLogger(__name__)


# --- Handshake ------------------------------------------------------------------------------------------------


STATION_BY_IDENTITY = fastorm.CompiledGet(
    lambda identity: ChargingStation.objects.filter(identity=identity), sentinels=("\x00identity",)
)
STATION_FOR_UPDATE = fastorm.CompiledGet(
    lambda pk: ChargingStation.objects.select_for_update().filter(pk=pk), sentinels=(-7_000_003,)
)


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    station: ChargingStation | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.station is not None


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password), or None when absent or malformed."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def station_handshake(*, identity: str, authorization: str | None) -> HandshakeResult:
    """Decide whether a station may connect: identity rules, password, unknown-station policy."""
    if not identity or len(identity) > 48:
        return HandshakeResult(None, "identity must be 1 to 48 characters")
    if ":" in identity:
        return HandshakeResult(None, "identity must not contain ':'")
    credentials = parse_basic_auth(authorization)
    station = STATION_BY_IDENTITY.get(identity)
    if station is None:
        policy = settings.CSMS_UNKNOWN_STATION_POLICY
        if policy == "reject":
            return HandshakeResult(None, "unknown station (CSMS_UNKNOWN_STATION_POLICY=reject)")
        status = RegistrationStatus.PENDING if policy == "pending" else RegistrationStatus.ACCEPTED
        station, _ = ChargingStation.objects.get_or_create(
            identity=identity, defaults={"registration_status": status, "description": f"auto-registered ({policy})"}
        )
        logger.info("registered unknown station %s as %s", identity, station.registration_status)
        return HandshakeResult(station)
    if station.requires_password:
        if credentials is None:
            return HandshakeResult(None, "missing HTTP Basic credentials")
        user, password = credentials
        if user != identity:
            return HandshakeResult(None, "Basic auth user does not match the identity")
        if not station.check_password(password):
            return HandshakeResult(None, "wrong password")
    return HandshakeResult(station)


def connection_refused(
    *, identity: str, station: ChargingStation | None, reason: str, remote_addr: str, subprotocol: str = ""
) -> Connection:
    return Connection.objects.create(
        station=station,
        identity=identity[:200],
        outcome=ConnectionEvent.REFUSED,
        reason=reason[:200],
        remote_addr=remote_addr,
        subprotocol=subprotocol,
        disconnected_at=timezone.now(),
    )


@dataclass(frozen=True, slots=True)
class OpenedConnection:
    connection_id: int
    station_id: int
    identity: str
    accepted: bool
    validation_mode: str
    replaced_channel: str


@transaction.atomic
def connection_open(*, station_id: int, remote_addr: str, subprotocol: str, channel_name: str) -> OpenedConnection:
    """Record an accepted connection; the station's previous live connection (if any) is marked replaced.

    On every (re)connection of every station, so in boot storms: statements compiled once (csms.fastorm).
    """
    station = STATION_FOR_UPDATE.get(station_id)
    if station is None:
        raise ChargingStation.DoesNotExist(f"station {station_id} is gone")
    connection = Connection(
        station=station,
        identity=station.identity,
        outcome=ConnectionEvent.ACCEPTED,
        remote_addr=remote_addr,
        subprotocol=subprotocol,
        channel_name=channel_name,
    )
    fastorm.insert_returning_pk(connection)
    replaced_channel = ""
    if station.current_connection_id and station.is_online:
        replaced_channel = station.channel_name
        Connection.objects.filter(pk=station.current_connection_id).update(replaced_by=connection)
    now = timezone.now()
    station.current_connection = connection
    station.channel_name = channel_name
    station.is_online = True
    station.last_seen_at = now
    fastorm.update(station, ["current_connection", "channel_name", "is_online", "last_seen_at"])
    webhooks.emit(
        "station.connected",
        {"station": station.identity, "connection_id": connection.pk, "remote_addr": remote_addr, "at": now},
    )
    return OpenedConnection(
        connection_id=connection.pk,
        station_id=station.pk,
        identity=station.identity,
        accepted=station.is_accepted,
        validation_mode=station.validation_mode,
        replaced_channel=replaced_channel,
    )


def connection_close(*, connection_id: int, close_code: int | None) -> None:
    connections_close(closes=[(connection_id, close_code)])


@transaction.atomic
def connections_close(*, closes: list[tuple[int, int | None]]) -> None:
    """Record ended connections ``[(connection_id, close_code)]`` in one transaction: a mass disconnect (a network
    cut, a restarting proxy) is recorded in a few batches rather than thousands of transactions racing daphne's
    application close timeout."""
    now = timezone.now()
    ids = [connection_id for connection_id, _ in closes]
    # Lock the station rows first, as connection_open does (taking the Connection row first deadlocked with a
    # replacing connection's open), in primary-key order so that two batches cannot deadlock each other.
    rows = list(Connection.objects.filter(pk__in=ids).values_list("station_id", "channel_name"))
    station_ids = sorted({station_id for station_id, _ in rows if station_id is not None})
    list(ChargingStation.objects.select_for_update().filter(pk__in=station_ids).order_by("pk").values_list("pk"))
    by_code: dict[int | None, list[int]] = {}
    for connection_id, close_code in closes:
        by_code.setdefault(close_code, []).append(connection_id)
    for close_code, same_code in by_code.items():
        Connection.objects.filter(pk__in=same_code, disconnected_at__isnull=True).update(
            disconnected_at=now, close_code=close_code
        )
    # Only a station's current connection takes it offline: a replaced one closing changes nothing.
    offline = list(
        ChargingStation.objects.filter(current_connection_id__in=ids).values_list(
            "pk", "identity", "current_connection_id"
        )
    )
    if offline:
        ChargingStation.objects.filter(pk__in=[pk for pk, _, _ in offline]).update(
            is_online=False, channel_name="", last_seen_at=now
        )
    codes = dict(closes)
    for _, identity, connection_id in offline:
        webhooks.emit(
            "station.disconnected",
            {"station": identity, "connection_id": connection_id, "close_code": codes[connection_id], "at": now},
        )
    # Commands dispatched to these connections that their consumers never took up (the channel message arrived
    # after the socket closed, or never will) would stay queued forever: fail them now.
    channels = [channel for _, channel in rows if channel]
    if channels:
        stale = Command.objects.filter(channel_name__in=channels, state=CommandState.QUEUED).order_by("pk")
        for pk in list(stale.values_list("pk", flat=True)):
            command_finish(command_id=pk, state=CommandState.FAILED, error_description=CONNECTION_CLOSED)


@dataclass(frozen=True, slots=True)
class ConnectResult:
    opened: OpenedConnection | None  # None: refused (and recorded as such)
    reason: str = ""


def station_connect(
    *, identity: str, authorization: str | None, remote_addr: str, subprotocol: str, channel_name: str
) -> ConnectResult:
    """A station's WebSocket handshake in one call: decide, then record the opened (or refused) connection."""
    result = station_handshake(identity=identity, authorization=authorization)
    if not result.ok:
        connection_refused(identity=identity, station=result.station, reason=result.reason, remote_addr=remote_addr)
        return ConnectResult(None, result.reason)
    assert result.station is not None
    opened = connection_open(
        station_id=result.station.pk, remote_addr=remote_addr, subprotocol=subprotocol, channel_name=channel_name
    )
    return ConnectResult(opened)


def station_register(
    *,
    identity: str,
    password: str | None = None,
    security_profile: int | None = None,
    registration_status: str = RegistrationStatus.ACCEPTED,
) -> tuple[ChargingStation, bool]:
    """Create or update a station (``manage.py addstation``). A password implies at least security profile 1."""
    if not identity or len(identity) > 48 or ":" in identity:
        raise ValueError("identity must be 1 to 48 characters without ':'")
    station, created = ChargingStation.objects.get_or_create(identity=identity)
    if password:
        station.set_password(password)
    if security_profile is None:
        security_profile = SecurityProfile.BASIC if password else station.security_profile
    if security_profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) and not station.password_hash:
        raise ValueError(f"security profile {security_profile} needs a password")
    station.security_profile = security_profile
    station.registration_status = registration_status
    station.save()
    return station, created


# --- Processing a station's CALL ------------------------------------------------------------------------------


def call_log_entries(call: frames.Call, response: dict[str, Any]) -> list[dict[str, Any]]:
    """The message-log rows of an answered CALL: the CALL in, its CALLRESULT out."""
    return [
        {
            "direction": Direction.IN,
            "message_type": frames.MessageType.CALL,
            "message_id": call.unique_id,
            "action": call.action,
            "payload": call.payload,
        },
        {
            "direction": Direction.OUT,
            "message_type": frames.MessageType.CALLRESULT,
            "message_id": call.unique_id,
            "action": call.action,
            "payload": response,
        },
    ]


def call_process(
    *,
    ctx: router.CallContext,
    call: frames.Call,
    payload: dict[str, Any],
    touch_last_seen: bool,
    log_in_transaction: bool = False,
) -> dict[str, Any]:
    """Run the handler of a validated CALL in one DB transaction (with its message log rows when
    ``log_in_transaction``; otherwise the caller hands them to the buffered writer).

    Returns the CALLRESULT payload once committed. Raises OcppError (InternalError for a DB failure); on any
    exception nothing of the CALL is persisted.
    """
    handler = router.handler_for(call.action)
    with transaction.atomic():
        response = handler(ctx, payload)
        schemas.validate(call.action, "Response", response)  # our own answers are always schema-valid
        if touch_last_seen:
            ChargingStation.objects.filter(pk=ctx.station_id).update(last_seen_at=timezone.now())
        if ctx.violations:
            ProtocolViolation.objects.create(
                station_id=ctx.station_id,
                message_id=call.unique_id,
                action=call.action,
                violations=[v.as_dict() for v in ctx.violations],
                tolerated=True,
            )
        if log_in_transaction and message_log.enabled(is_error=False):
            frames_log(
                station_id=ctx.station_id,
                connection_id=ctx.connection_id,
                entries=call_log_entries(call, response),
                is_error=False,
            )
    return response


def call_answer_in_loop(*, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any]) -> dict[str, Any]:
    """Answer a CALL whose handler touches no database (Heartbeat between last-seen writes), in the event loop."""
    response = router.handler_for(call.action)(ctx, payload)
    schemas.validate(call.action, "Response", response)
    return response


def frames_log(
    *, station_id: int | None, connection_id: int | None, entries: list[dict[str, Any]], is_error: bool
) -> None:
    """Write message-log rows now (the synchronous mode, CSMS_MESSAGE_LOG_FLUSH_MS=0)."""
    if not message_log.enabled(is_error=is_error):
        return
    message_log.rows_write(
        [{"station_id": station_id, "connection_id": connection_id, **entry} for entry in entries]
    )


def stations_mark_stale_offline(*, now: datetime | None = None) -> int:
    """Mark offline the stations silent for longer than their heartbeat allows (their process is gone).

    # OCPP SPEC-SILENT: a station is stale after 2 heartbeat intervals + CSMS_STALE_GRACE_S without any message.
    Live sockets are kept honest by WebSocket pings (daphne closes dead ones); this only catches connections whose
    server process crashed and so never recorded the disconnect.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.CSMS_HEARTBEAT_INTERVAL_S + settings.CSMS_STALE_GRACE_S)
    with transaction.atomic():
        stale = list(
            ChargingStation.objects.select_for_update(skip_locked=True)
            .filter(is_online=True, last_seen_at__lt=cutoff)
            .values_list("pk", "current_connection_id")
        )
        if not stale:
            return 0
        ChargingStation.objects.filter(pk__in=[pk for pk, _ in stale]).update(is_online=False, channel_name="")
        Connection.objects.filter(pk__in=[c for _, c in stale if c], disconnected_at__isnull=True).update(
            disconnected_at=now
        )
    logger.warning("marked %d silent stations offline", len(stale))
    return len(stale)


# --- CSMS -> CS commands ----------------------------------------------------------------------------------------

CONNECTION_CLOSED = "connection closed before the station answered"
NOT_CONNECTED = "station not connected"


class CommandValidationError(ValueError):
    """A command refused before anything was stored or sent: unknown/wrong-direction action or a bad payload."""

    def __init__(self, message: str, violations: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "violations": self.violations}


def command_validate(*, action: str, payload: Any) -> None:
    """Raise CommandValidationError unless ``action`` is a CSMS->CS action and ``payload`` its valid request."""
    if action not in actions.CSMS_TO_CS:
        if action in schemas.all_actions():
            raise CommandValidationError(f"{action} is not a CSMS->CS action: a CSMS cannot send it to a station")
        raise CommandValidationError(f"{action[:64]!r} is not an OCPP 2.0.1 action")
    if not isinstance(payload, dict):
        raise CommandValidationError(f"{action}Request payload must be a JSON object, got {type(payload).__name__}")
    found = schemas.violations(action, "Request", payload)
    if found:
        violations = [v.as_dict() for v, _ in found]
        first = violations[0]
        raise CommandValidationError(
            f"{action}Request is not schema-valid: {first['path']}: {first['message']}", violations
        )


def command_group(command_id: int) -> str:
    return f"command-{command_id}"


def _dispatch(channel: str, command_id: int) -> None:
    """Hand the command to the consumer of the station's connection, in whichever process it lives."""
    try:
        async_to_sync(get_channel_layer().send)(channel, {"type": "command.dispatch", "command_id": command_id})
    except Exception as exc:
        # Channel layer down or the channel full: the command would never leave "queued".
        logger.exception("could not dispatch command %s to %s", command_id, channel)
        command_finish(
            command_id=command_id,
            state=CommandState.FAILED,
            error_description=f"could not reach the station's connection: {type(exc).__name__}",
        )


def _publish(command: Command, identity: str) -> None:
    """Tell waiting API callers and dashboards the command's outcome (after commit, best effort)."""
    layer = get_channel_layer()
    message = {"type": "command.finished", "command_id": command.pk, "state": command.state, "station": identity}
    try:
        async_to_sync(layer.group_send)(command_group(command.pk), message)
        async_to_sync(layer.group_send)(station_group(identity), message)
    except Exception:
        logger.exception("could not publish the outcome of command %s", command.pk)


def command_send(
    *,
    station: ChargingStation,
    action: str,
    payload: dict[str, Any],
    user: AbstractBaseUser | None = None,
    bulk: BulkCommand | None = None,
) -> Command:
    """Validate, record and dispatch a CSMS->CS request to the station's live connection (in whichever process).

    Raises CommandValidationError (nothing stored). A station that is not connected gets an ``offline`` command.
    The outcome arrives later through :func:`command_finish`.
    """
    command_validate(action=action, payload=payload)
    with transaction.atomic():
        # The row lock orders us with connection_close: either we see the station offline, or the closing
        # connection sees our queued command and fails it.
        live = ChargingStation.objects.select_for_update().values("is_online", "channel_name").get(pk=station.pk)
        online = live["is_online"] and bool(live["channel_name"])
        now = timezone.now()
        command = Command.objects.create(
            station=station,
            action=action,
            request=payload,
            state=CommandState.QUEUED if online else CommandState.OFFLINE,
            channel_name=live["channel_name"] if online else "",
            created_by=user if user is not None and user.is_authenticated else None,
            bulk=bulk,
            error_description="" if online else NOT_CONNECTED,
            finished_at=None if online else now,
        )
        command.message_id = str(command.pk)
        command.save(update_fields=["message_id"])
        if online:
            channel, command_id = live["channel_name"], command.pk
            transaction.on_commit(lambda: _dispatch(channel, command_id))
        else:
            transaction.on_commit(lambda: _publish(command, station.identity))
    return command


def command_mark_sent(*, command_id: int) -> None:
    Command.objects.filter(pk=command_id, state=CommandState.QUEUED).update(
        state=CommandState.SENT, sent_at=timezone.now()
    )


# Domain reactions to a station's answer, per action (e.g. the transactions app records SendLocalList results).
# They run inside command_finish's transaction, so the command's outcome and its effect commit together.
AnswerHandler = Callable[[Command], None]
_answer_handlers: dict[str, list[AnswerHandler]] = {}


def on_command_answered(action: str) -> Callable[[AnswerHandler], AnswerHandler]:
    """Register ``func(command)`` to run when a command of ``action`` is answered (state ``answered``)."""
    if action not in actions.CSMS_TO_CS:
        raise ValueError(f"{action!r} is not a CSMS->CS action")

    def register(func: AnswerHandler) -> AnswerHandler:
        if func not in _answer_handlers.setdefault(action, []):
            _answer_handlers[action].append(func)
        return func

    return register


def command_finish(
    *,
    command_id: int,
    state: str,
    response: dict[str, Any] | None = None,
    error_code: str = "",
    error_description: str = "",
    error_details: dict[str, Any] | None = None,
) -> Command | None:
    """Record a command's outcome once; a CallResult that violates the response schema becomes ``failed``.

    Returns the command, or None when it had already finished (e.g. failed by a closing connection).
    """
    if state not in FINAL_COMMAND_STATES:
        raise ValueError(f"{state!r} is not a final command state")
    with transaction.atomic():
        command = (
            Command.objects.select_for_update()
            .select_related("station")
            .filter(pk=command_id)
            .exclude(state__in=FINAL_COMMAND_STATES)
            .first()
        )
        if command is None:
            return None
        if state == CommandState.ANSWERED:
            found = schemas.violations(command.action, "Response", response) if isinstance(response, dict) else []
            # A lenient station's answer with only tolerable violations counts, as its requests do.
            tolerated = (
                bool(found)
                and command.station.validation_mode == ValidationMode.LENIENT
                and all(v.keyword in schemas.TOLERABLE for v, _ in found)
            )
            if found:
                ProtocolViolation.objects.create(
                    station_id=command.station_id,
                    message_id=command.message_id,
                    action=f"{command.action}Response"[:50],
                    violations=[v.as_dict() for v, _ in found],
                    tolerated=tolerated,
                )
            if not isinstance(response, dict) or (found and not tolerated):
                first = found[0][0] if found else None
                error_code = first.code if first else "FormatViolation"
                error_description = (
                    f"the station's {command.action}Response is not schema-valid: "
                    + (f"{first.path}: {first.message}" if first else "payload is not a JSON object")
                )[:255]
                error_details = {"violations": [v.as_dict() for v, _ in found]}
                state = CommandState.FAILED
        command.state = state
        command.response = response
        command.error_code = error_code[:40]
        command.error_description = error_description[:255]
        command.error_details = error_details
        command.finished_at = timezone.now()
        # A reply (or a timeout) proves the CALL went out even if mark_sent lost the race with the reply.
        replied = state in (CommandState.ANSWERED, CommandState.TIMED_OUT) or response is not None or error_code
        if command.sent_at is None and replied:
            command.sent_at = command.finished_at
        command.save(
            update_fields=[
                "state",
                "response",
                "error_code",
                "error_description",
                "error_details",
                "finished_at",
                "sent_at",
            ]
        )
        if state == CommandState.ANSWERED:
            for handler in _answer_handlers.get(command.action, []):
                try:
                    with transaction.atomic():  # a savepoint: a failing reaction never loses the outcome
                        handler(command)
                except Exception:
                    logger.exception("reaction %r to command %s failed", handler, command.pk)
        identity = command.station.identity
        transaction.on_commit(lambda: _publish(command, identity))
        webhooks.emit("command.finished", lambda: command_webhook_data(command))
    return command


def command_webhook_data(command: Command) -> dict[str, Any]:
    """The ``data`` of the command.finished webhook."""
    error = None
    if command.error_code or command.error_description:
        error = {"code": command.error_code, "description": command.error_description, "details": command.error_details}
    return {
        "id": command.pk,
        "station": command.station.identity,
        "action": command.action,
        "state": command.state,
        "response": command.response,
        "error": error,
        "bulk": command.bulk_id,
        "created_at": command.created_at,
        "finished_at": command.finished_at,
    }


# --- Bulk commands --------------------------------------------------------------------------------------------


def bulk_targets(
    *, identities: Iterable[str] | None = None, online: bool | None = None, model: str = ""
) -> QuerySet[ChargingStation]:
    """Stations chosen by an explicit identity list and/or a filter."""
    stations = ChargingStation.objects.all()
    if identities is not None:
        stations = stations.filter(identity__in=list(identities))
    if online is not None:
        stations = stations.filter(is_online=online)
    if model:
        stations = stations.filter(model=model)
    return stations.order_by("identity")


def bulk_command_send(
    *,
    action: str,
    payload: dict[str, Any],
    stations: Iterable[ChargingStation],
    target: dict[str, Any] | None = None,
    user: AbstractBaseUser | None = None,
) -> BulkCommand:
    """Send one request to many stations as one operation: one Command per station, all linked to the bulk."""
    command_validate(action=action, payload=payload)
    with transaction.atomic():
        bulk = BulkCommand.objects.create(
            action=action,
            request=payload,
            target=target or {},
            created_by=user if user is not None and user.is_authenticated else None,
        )
        for station in stations:
            command_send(station=station, action=action, payload=payload, user=user, bulk=bulk)
    return bulk


def bulk_summary(bulk: BulkCommand) -> dict[str, Any]:
    """Counts per state, and whether every station's command is over."""
    counts = {state: 0 for state in CommandState.values}
    for row in bulk.commands.values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    total = sum(counts.values())
    pending = counts[CommandState.QUEUED] + counts[CommandState.SENT]
    return {"total": total, "pending": pending, "done": pending == 0, "by_state": counts}


def command_for_dispatch(*, command_id: int) -> Command | None:
    """The command a consumer should put on the wire, or None if it is no longer queued."""
    return Command.objects.filter(pk=command_id, state=CommandState.QUEUED).first()


def commands_expire_stale(*, older_than_s: float) -> int:
    """End commands stuck in queued/sent for longer than any station could take (e.g. their server process died
    without closing its connections). Returns how many were ended."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = Command.objects.filter(state__in=[CommandState.QUEUED, CommandState.SENT], created_at__lt=cutoff)
    ended = 0
    for pk in list(stale.values_list("pk", flat=True)):
        finished = command_finish(
            command_id=pk,
            state=CommandState.TIMED_OUT,
            error_description=f"no outcome recorded within {older_than_s:g} s (the connection's process stopped?)",
        )
        ended += finished is not None
    return ended


OPERATOR_GROUP = "operator"
OPERATOR_PERMISSIONS = ("add_command", "view_command", "add_bulkcommand", "view_bulkcommand")


def operator_group_ensure() -> None:
    """The ``operator`` group may send commands (``stations.add_command``) and read them."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    perms = Permission.objects.filter(content_type__app_label="stations", codename__in=OPERATOR_PERMISSIONS)
    group.permissions.add(*perms)


# --- Registration through the API -----------------------------------------------------------------------------


class StationInUse(Exception):
    """The station has an audit trail (commands, transactions) that must outlive it."""


def station_update(*, station: ChargingStation, password: str | None = None, **fields: Any) -> ChargingStation:
    """Change registration fields (``registration_status``, ``security_profile``, ``validation_mode``,
    ``description``); a given ``password`` is stored hashed ("" removes it). Profiles 1 and 2 need a password."""
    for name, value in fields.items():
        setattr(station, name, value)
    if password is not None:
        station.set_password(password)
    if station.security_profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) and not station.password_hash:
        raise ValueError(f"security profile {station.security_profile} needs a password")
    station.save()
    return station


def station_delete(*, station: ChargingStation) -> None:
    """Delete a station without history; one with commands or transactions is refused (StationInUse)."""
    from django.db.models import ProtectedError

    from transactions.models import ChargingTransaction

    if Command.objects.filter(station=station).exists():
        raise StationInUse("the station has commands (audit trail); set its registration_status to Rejected instead")
    if ChargingTransaction.objects.filter(station=station).exists():
        raise StationInUse("the station has transactions (billing records); set its registration_status to Rejected")
    try:
        station.delete()
    except ProtectedError as exc:
        raise StationInUse("the station is referenced by records that must be kept") from exc
