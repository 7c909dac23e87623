"""A station's connections: the WebSocket handshake (identity, password, unknown-station policy), connections
opened and closed (one at a time or a mass disconnect in batches), and the sweep of stations left "online" by a
process that died.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from csms import fastorm
from security import hashers, rotation
from security.limiter import ANY, limiter, refusals
from security.models import CsmsSecurityEventType
from security.transport import PLAIN, Transport, achieved_profile, certificate_matches, transport_refusal
from webhooks import services as webhooks

from . import leases
from .commands import CONNECTION_CLOSED, command_finish
from .models import (
    ChargingStation,
    Command,
    CommandState,
    Connection,
    ConnectionEvent,
    RegistrationStatus,
    SecurityProfile,
)

logger = logging.getLogger(__name__)


STATION_BY_IDENTITY = fastorm.CompiledGet(
    lambda identity: ChargingStation.objects.filter(identity=identity), sentinels=("\x00identity",)
)
STATION_FOR_UPDATE = fastorm.CompiledGet(
    lambda pk: ChargingStation.objects.select_for_update().filter(pk=pk), sentinels=(-7_000_003,)
)


THROTTLED = "too many failed attempts: refused unchecked"


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """A password to verify off the database threads (a legacy slow hash): ``password_verify``."""

    station_id: int
    identity: str
    address: str
    password: str
    encoded: str
    tls: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    station: ChargingStation | None
    reason: str = ""
    # Set when the password check failed (or was skipped by the limiter): the refusal is counted.
    auth_station_id: int | None = None
    throttled: str = ""  # the limiter rule that refused it unchecked ("address", "identity")
    check: PasswordCheck | None = None
    insecure: bool = False  # refused because the transport is weaker than the station's profile
    achieved: int = 0  # the security profile the accepted connection meets
    password_used: str | int = ""  # which password matched (security.rotation.PasswordUse, or a rotation's pk)

    @property
    def ok(self) -> bool:
        return self.station is not None


def client_host(remote_addr: str) -> str:
    """``"10.0.0.7:51234"`` -> ``"10.0.0.7"`` (``"::1:51234"`` -> ``"::1"``): failures are counted per host."""
    return remote_addr.rpartition(":")[0] or remote_addr


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


def station_handshake(
    *, identity: str, authorization: str | None, address: str = "", transport: Transport = PLAIN
) -> HandshakeResult:
    """Decide whether a station may connect: identity rules, transport against its security profile
    (security/transport.py), password (with the failure limiter of security/limiter.py, consulted before any
    hashing; a rotated password's old and new value, security/rotation.py), unknown-station policy."""
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
    profiles = station.allowed_security_profiles
    weaker = transport_refusal(profiles=profiles, transport=transport, identity=identity)
    if weaker:
        return HandshakeResult(None, weaker, auth_station_id=station.pk, insecure=True)
    if SecurityProfile.CLIENT_CERT in profiles and certificate_matches(transport=transport, identity=identity):
        # Profile 3: the terminator verified the certificate (CSMS CA, CRL) and its CN is the identity.
        return HandshakeResult(station, achieved=SecurityProfile.CLIENT_CERT)
    needs_password = bool(profiles & {SecurityProfile.BASIC, SecurityProfile.BASIC_TLS}) or bool(station.password_hash)
    if not needs_password:
        return HandshakeResult(station, achieved=SecurityProfile.UNSECURED)
    rule = limiter().refuse_unchecked(identity=identity, address=address)
    if rule:
        return HandshakeResult(None, THROTTLED, auth_station_id=station.pk, throttled=rule)
    reason = ""
    used: rotation.PasswordUse | int = rotation.PasswordUse.CURRENT
    if credentials is None:
        reason = "missing HTTP Basic credentials"
    elif credentials[0] != identity:
        reason = "Basic auth user does not match the identity"
    else:
        alternate = None
        if station.password_hash and not hashers.is_fast(station.password_hash):
            alternate = rotation.password_alternate(station=station, password=credentials[1])
            if alternate is None:
                # A legacy slow hash (~0.5 s of CPU): verified in the auth threads, never in a database thread.
                check = PasswordCheck(
                    station.pk, identity, address, credentials[1], station.password_hash, transport.tls
                )
                return HandshakeResult(None, check=check)
        elif not station.check_password(credentials[1]):  # microseconds: not worth a hop to another thread
            alternate = rotation.password_alternate(station=station, password=credentials[1])
            if alternate is None:
                reason = "wrong password"
        if alternate is not None:
            used = alternate
    if reason:
        limiter().record_failure(identity=identity, address=address)
        return HandshakeResult(None, reason, auth_station_id=station.pk)
    limiter().record_success(identity=identity, address=address)
    achieved = achieved_profile(transport=transport, identity=identity, password_ok=True)
    return HandshakeResult(station, achieved=achieved, password_used=used)


@dataclass(frozen=True, slots=True)
class PasswordVerdict:
    ok: bool
    throttled: str = ""
    upgraded_hash: str = ""  # the password re-hashed with the station hasher, to store (legacy hash upgrade)


def password_verify(*, check: PasswordCheck) -> PasswordVerdict:
    """Verify a slow hash in an auth thread (csms.dbpool.auth): no database. The limiter is asked again here, at
    the last moment, so that a flood queued behind the first failures is refused without hashing."""
    rule = limiter().refuse_unchecked(identity=check.identity, address=check.address)
    if rule:
        return PasswordVerdict(False, throttled=rule)
    upgraded: list[str] = []
    ok = check_password(check.password, check.encoded, upgraded.append, preferred=hashers.ALGORITHM)
    if not ok:
        limiter().record_failure(identity=check.identity, address=check.address)
        return PasswordVerdict(False)
    limiter().record_success(identity=check.identity, address=check.address)
    new_hash = make_password(upgraded[0], hasher=hashers.ALGORITHM) if upgraded else ""
    return PasswordVerdict(True, upgraded_hash=new_hash)


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
def connection_open(
    *,
    station_id: int,
    remote_addr: str,
    subprotocol: str,
    channel_name: str,
    tls: bool | None = None,
    security_profile: int | None = None,
) -> OpenedConnection:
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
        server_process_id=leases.current_process_id(),
        tls=tls,
        security_profile=security_profile,
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
    opened: OpenedConnection | None  # None: refused (and recorded as such), or a password check to make first
    reason: str = ""
    check: PasswordCheck | None = None
    auth_refused: bool = False  # a refused password: counted for the aggregated security events


def handshake_refusal_count(
    *,
    identity: str,
    address: str,
    station_id: int | None,
    reason: str,
    throttled: bool,
    logged: bool,
    insecure: bool = False,
) -> None:
    """Count a refused password handshake (security.limiter.refusals, written aggregated by the flusher); pass
    ``"*"`` (limiter.ANY) as the identity or address that is not to be told apart (see security/limiter.py)."""
    refusals.add(
        identity=identity,
        address=address,
        type=(
            CsmsSecurityEventType.HANDSHAKE_INSECURE
            if insecure
            else CsmsSecurityEventType.HANDSHAKE_THROTTLED
            if throttled
            else CsmsSecurityEventType.HANDSHAKE_REFUSED
        ),
        station_id=station_id,
        reason=reason if logged else f"{reason} (counted only: too many failures)",
        at=timezone.now(),
    )


def _refuse(*, identity: str, remote_addr: str, result: HandshakeResult) -> ConnectResult:
    counted = result.auth_station_id is not None
    # Past the identity's limit (or refused unchecked), refusals are only counted: a flood, even from spoofed
    # addresses, writes no connection-log row per attempt.
    logged = not (counted and (result.throttled or limiter().identity_over_limit(identity)))
    if counted:
        address = client_host(remote_addr)
        handshake_refusal_count(
            identity=identity,
            address=address if logged or result.throttled == "address" else ANY,
            station_id=result.auth_station_id,
            reason=result.reason,
            throttled=bool(result.throttled),
            logged=logged,
            insecure=result.insecure,
        )
    if logged:
        connection_refused(identity=identity, station=result.station, reason=result.reason, remote_addr=remote_addr)
    return ConnectResult(None, result.reason, auth_refused=counted)


def station_connect(
    *,
    identity: str,
    authorization: str | None,
    remote_addr: str,
    subprotocol: str,
    channel_name: str,
    transport: Transport = PLAIN,
) -> ConnectResult:
    """A station's WebSocket handshake in one call: decide, then record the opened (or refused) connection. A
    password under a legacy slow hash comes back as ``check``: ``password_verify`` it off the database threads,
    then finish with ``station_connect_checked``."""
    result = station_handshake(
        identity=identity, authorization=authorization, address=client_host(remote_addr), transport=transport
    )
    if result.check is not None:
        return ConnectResult(None, check=result.check)
    if not result.ok:
        return _refuse(identity=identity, remote_addr=remote_addr, result=result)
    assert result.station is not None
    security_state_after_connect(station=result.station, achieved=result.achieved, password_used=result.password_used)
    opened = connection_open(
        station_id=result.station.pk,
        remote_addr=remote_addr,
        subprotocol=subprotocol,
        channel_name=channel_name,
        tls=transport.tls,
        security_profile=result.achieved,
    )
    return ConnectResult(opened)


def station_connect_checked(
    *, check: PasswordCheck, verdict: PasswordVerdict, remote_addr: str, subprotocol: str, channel_name: str
) -> ConnectResult:
    """The end of a handshake whose password ``password_verify`` checked: store the upgraded hash, open or refuse."""
    if not verdict.ok:
        reason = THROTTLED if verdict.throttled else "wrong password"
        result = HandshakeResult(None, reason, auth_station_id=check.station_id, throttled=verdict.throttled)
        return _refuse(identity=check.identity, remote_addr=remote_addr, result=result)
    if verdict.upgraded_hash:  # unless the password was changed meanwhile
        ChargingStation.objects.filter(pk=check.station_id, password_hash=check.encoded).update(
            password_hash=verdict.upgraded_hash
        )
    station = ChargingStation.objects.get(pk=check.station_id)
    achieved = SecurityProfile.BASIC_TLS if check.tls else SecurityProfile.BASIC
    security_state_after_connect(station=station, achieved=achieved, password_used=rotation.PasswordUse.CURRENT)
    opened = connection_open(
        station_id=check.station_id,
        remote_addr=remote_addr,
        subprotocol=subprotocol,
        channel_name=channel_name,
        tls=check.tls,
        security_profile=achieved,
    )
    return ConnectResult(opened)


def security_state_after_connect(*, station: ChargingStation, achieved: int, password_used: str | int) -> None:
    """What an accepted connection settles: the first connection on a pending security profile makes it the
    station's (security/upgrade.py); a rotated password is settled by the one the station used
    (security/rotation.py)."""
    pending = station.pending_security_profile
    if pending is not None and achieved == pending:
        ChargingStation.objects.filter(pk=station.pk, pending_security_profile=pending).update(
            security_profile=pending, pending_security_profile=None
        )
        logger.info("station %s: first connection on security profile %s, now its profile", station.identity, pending)
    rotation.password_settle(station=station, used=password_used)


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
