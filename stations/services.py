"""Actions on stations: handshake checks, connection bookkeeping, processing a station's CALL, registration."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from csms.ocpp import frames, router, schemas

from .models import (
    ChargingStation,
    Connection,
    ConnectionEvent,
    Direction,
    MessageLog,
    ProtocolViolation,
    RegistrationStatus,
    SecurityProfile,
)

logger = logging.getLogger(__name__)


# --- Handshake ------------------------------------------------------------------------------------------------


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
    station = ChargingStation.objects.filter(identity=identity).first()
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
    """Record an accepted connection; the station's previous live connection (if any) is marked replaced."""
    station = ChargingStation.objects.select_for_update().get(pk=station_id)
    connection = Connection.objects.create(
        station=station,
        identity=station.identity,
        outcome=ConnectionEvent.ACCEPTED,
        remote_addr=remote_addr,
        subprotocol=subprotocol,
        channel_name=channel_name,
    )
    replaced_channel = ""
    if station.current_connection_id and station.is_online:
        replaced_channel = station.channel_name
        Connection.objects.filter(pk=station.current_connection_id).update(replaced_by=connection)
    now = timezone.now()
    station.current_connection = connection
    station.channel_name = channel_name
    station.is_online = True
    station.last_seen_at = now
    station.save(update_fields=["current_connection", "channel_name", "is_online", "last_seen_at"])
    return OpenedConnection(
        connection_id=connection.pk,
        station_id=station.pk,
        identity=station.identity,
        accepted=station.is_accepted,
        validation_mode=station.validation_mode,
        replaced_channel=replaced_channel,
    )


@transaction.atomic
def connection_close(*, connection_id: int, close_code: int | None) -> None:
    now = timezone.now()
    Connection.objects.filter(pk=connection_id, disconnected_at__isnull=True).update(
        disconnected_at=now, close_code=close_code
    )
    # Only the station's current connection takes it offline: a replaced one closing changes nothing.
    ChargingStation.objects.filter(current_connection_id=connection_id).update(
        is_online=False, channel_name="", last_seen_at=now
    )


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


@dataclass(slots=True)
class CallOutcome:
    payload: dict[str, Any]


def _log_enabled(is_error: bool) -> bool:
    mode = settings.CSMS_MESSAGE_LOG
    return mode == "all" or (mode == "errors" and is_error)


def call_process(
    *, ctx: router.CallContext, call: frames.Call, payload: dict[str, Any], touch_last_seen: bool
) -> dict[str, Any]:
    """Run the handler of a validated CALL in one DB transaction with its message log rows.

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
        if _log_enabled(is_error=False):
            MessageLog.objects.bulk_create(
                [
                    MessageLog(
                        station_id=ctx.station_id,
                        connection_id=ctx.connection_id,
                        direction=Direction.IN,
                        message_type=frames.MessageType.CALL,
                        message_id=call.unique_id,
                        action=call.action,
                        payload=call.payload,
                    ),
                    MessageLog(
                        station_id=ctx.station_id,
                        connection_id=ctx.connection_id,
                        direction=Direction.OUT,
                        message_type=frames.MessageType.CALLRESULT,
                        message_id=call.unique_id,
                        action=call.action,
                        payload=response,
                    ),
                ]
            )
    return response


def frames_log(
    *, station_id: int | None, connection_id: int | None, entries: list[dict[str, Any]], is_error: bool
) -> None:
    """Write message-log rows outside a handler's transaction (errors, CSMS->CS calls and their replies)."""
    if not _log_enabled(is_error):
        return
    MessageLog.objects.bulk_create(
        MessageLog(station_id=station_id, connection_id=connection_id, **entry) for entry in entries
    )


def violation_record(
    *, station_id: int, message_id: str, action: str, violations: list[dict[str, str]], tolerated: bool
) -> None:
    ProtocolViolation.objects.create(
        station_id=station_id, message_id=message_id, action=action, violations=violations, tolerated=tolerated
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
