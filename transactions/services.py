"""Authorization, local authorization lists, transactions and metering: the actions, all synchronous.

Handlers call these inside the CALL's DB transaction; the CALLRESULT leaves only after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import Lower
from django.utils import timezone

from csms import fastorm, groupscope
from csms.timeutil import format_ocpp, parse_ocpp
from stations.commands import command_send
from stations.commands import helpers as command_helpers
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command
from webhooks import services as webhooks

from . import metering, observers, reservations, tariffs
from .id_token_import import id_token_conflict
from .models import (
    AuthorizationStatus,
    ChargingTransaction,
    IdToken,
    IdTokenType,
    LocalAuthList,
    MeterSample,
    RemoteStartRequest,
    SendLocalListStatus,
    TransactionEventRecord,
    TransactionEventType,
    UpdateType,
)

logger = logging.getLogger(__name__)

# seq_no_gaps keeps at most this many missing numbers (a station with odd numbering must not bloat the row).
MAX_RECORDED_GAPS = 200


# --- Authorization --------------------------------------------------------------------------------------------


_TOKEN = fastorm.CompiledGet(
    # idTokens are case insensitive (IdTokenType): compared lower-cased, as the unique constraint on
    # (Lower(id_token), type) does, so PostgreSQL uses that index. (Not __iexact: a compiled LIKE on SQLite would
    # take "%" in an idToken as a wildcard.)
    lambda id_token, token_type: IdToken.objects.alias(id_token_lower=Lower("id_token")).filter(
        id_token_lower=id_token, type=token_type
    ),
    sentinels=("\x00id-token", "\x00type"),
)
_TOKEN_BY_PK = fastorm.CompiledGet(lambda pk: IdToken.objects.filter(pk=pk), sentinels=(-7_000_002,))


def id_token_lookup(*, id_token: str, token_type: str) -> IdToken | None:
    """The known token (with its group token loaded), or None. Asked on every Authorize and token-carrying
    TransactionEvent: compiled once."""
    token = _TOKEN.get(id_token.lower(), token_type)
    if token is not None:
        # Set even when None: token.group_id_token must not run a query of its own later.
        token.group_id_token = _TOKEN_BY_PK.get(token.group_id_token_id) if token.group_id_token_id else None
    return token


def _unknown_token_status() -> str:
    policy = settings.CSMS_UNKNOWN_ID_TOKEN_POLICY
    if policy == "accept":
        return AuthorizationStatus.ACCEPTED
    if policy == "invalid":
        return AuthorizationStatus.INVALID
    return AuthorizationStatus.UNKNOWN


def id_token_info_for(token: IdToken | None, *, now: datetime | None = None) -> dict[str, Any]:
    """IdTokenInfoType for a known token (or the unknown-token policy when None)."""
    now = now or timezone.now()
    if token is None:
        return {"status": _unknown_token_status()}
    status = token.effective_status(now)
    group = token.group_id_token
    if group is not None and status == AuthorizationStatus.ACCEPTED:
        # OCPP SPEC-SILENT: a blocked/expired group token disables its members (a fleet card revoked as a whole).
        group_status = group.effective_status(now)
        if group_status != AuthorizationStatus.ACCEPTED:
            status = group_status
    info: dict[str, Any] = {"status": status}
    if token.expires_at is not None and status == AuthorizationStatus.ACCEPTED:
        info["cacheExpiryDateTime"] = format_ocpp(token.expires_at)
    if group is not None:
        info["groupIdToken"] = group.as_ocpp()
    if token.language:
        info["language1"] = token.language
    if token.evse_ids:
        info["evseId"] = sorted(int(e) for e in token.evse_ids)
    return info


def id_token_info(*, id_token: dict[str, Any], now: datetime | None = None) -> tuple[dict[str, Any], IdToken | None]:
    """IdTokenInfoType answering an IdTokenType, and the known token (if any)."""
    if id_token["type"] == IdTokenType.NO_AUTHORIZATION:
        # OCPP SPEC-SILENT: NoAuthorization means the station authorised nobody (free vend); there is nothing for the
        # CSMS to check, and answering anything but Accepted would make the station stop a legitimate session.
        return {"status": AuthorizationStatus.ACCEPTED}, None
    token = id_token_lookup(id_token=id_token["idToken"], token_type=id_token["type"])
    return id_token_info_for(token, now=now), token


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    id_token_info: dict[str, Any]
    certificate_status: str | None


def authorize(
    *,
    station_id: int,
    id_token: dict[str, Any],
    certificate_hash_data: list[dict[str, Any]] | None = None,
    certificate: str | None = None,
) -> AuthorizeResult:
    info, token = id_token_info(id_token=id_token)
    if info["status"] == AuthorizationStatus.ACCEPTED and settings.CSMS_TARIFF_TEXT_TEMPLATE:
        # The tariff text for the station's display (one query, only for an accepted token).
        version = tariffs.tariff_for(station=station_id, id_token=token, at=timezone.now())
        info = tariffs.id_token_info_with_tariff(info, version=version)
    certificate_status = None
    if certificate_hash_data or certificate:
        from security.certificates import certificate_status_for  # the contract certificate: its chain, OCSP

        certificate_status = certificate_status_for(hash_data=certificate_hash_data, certificate=certificate)
    return AuthorizeResult(info, certificate_status)


# --- Local authorization list ---------------------------------------------------------------------------------


def _entry_key(token: IdToken) -> str:
    return f"{token.type}:{token.id_token.lower()}"


StationRef = ChargingStation | int  # a station or its primary key


def _pk(station: StationRef) -> int:
    return station if isinstance(station, int) else station.pk


def local_list_get(*, station: StationRef, lock: bool = False) -> LocalAuthList:
    local_list, _ = LocalAuthList.objects.get_or_create(station_id=_pk(station))
    if lock:
        local_list = LocalAuthList.objects.select_for_update().get(pk=local_list.pk)
    return local_list


def local_list_desired_entries(*, local_list: LocalAuthList, now: datetime | None = None) -> dict[str, Any]:
    """What the station's list should hold now: ``{key: AuthorizationData}``."""
    now = now or timezone.now()
    tokens = local_list.tokens.select_related("group_id_token").order_by("type", "id_token")
    return {_entry_key(t): {"idToken": t.as_ocpp(), "idTokenInfo": id_token_info_for(t, now=now)} for t in tokens}


@transaction.atomic
def local_list_build_update(*, station: StationRef, full: bool, now: datetime | None = None) -> dict[str, Any] | None:
    """A SendLocalListRequest bringing the station's list to the desired state, recorded as pending.

    Differential updates carry added/changed entries (with idTokenInfo) and removed ones (without, which the spec
    defines as "remove"). A differential is impossible while the station's version is unknown: then Full is built.
    Returns None for a differential with nothing to change.
    """
    local_list = local_list_get(station=station, lock=True)
    desired = local_list_desired_entries(local_list=local_list, now=now)
    if not desired and local_list.version == 0 and not full:
        # Reconciling a list never sent and with nothing to hold: the CSMS does not manage this station's list, so
        # it must not replace whatever list the station keeps (an empty Full would wipe it). An explicit Full
        # (``full=True``: the operator empties the list on purpose) is still built.
        return None
    if local_list.station_version is None:
        full = True
    # Version 0 means "no list" on the station (GetLocalListVersion), so real versions start at 1.
    version = max(local_list.version, local_list.station_version or 0) + 1
    if full:
        entries = list(desired.values())
        update_type = UpdateType.FULL
    else:
        synced = local_list.synced_entries
        entries = [data for key, data in desired.items() if synced.get(key) != data]
        entries += [{"idToken": synced[key]["idToken"]} for key in synced if key not in desired]
        if not entries:
            return None
        update_type = UpdateType.DIFFERENTIAL
    payload: dict[str, Any] = {"updateType": str(update_type), "versionNumber": version}
    if entries:  # an empty Full update empties the station's list; the schema forbids an empty array
        payload["localAuthorizationList"] = entries
    local_list.version = version
    local_list.pending_version = version
    local_list.pending_update_type = update_type
    local_list.pending_entries = desired
    local_list.last_sent_at = now or timezone.now()
    local_list.save()
    return payload


@transaction.atomic
def local_list_record_result(*, station: StationRef, version_number: int, status: str) -> LocalAuthList:
    """Apply the station's SendLocalListResponse to the update with ``version_number``.

    Accepted: the station now holds the pending entries at that version. VersionMismatch: its version is unknown,
    so the next update is Full. Failed: nothing changed on the station. A stale answer (another update was built
    since) is ignored.
    """
    local_list = local_list_get(station=station, lock=True)
    if local_list.pending_version != version_number:
        logger.info("stale SendLocalList result v%s for station %s ignored", version_number, _pk(station))
        return local_list
    if status == SendLocalListStatus.ACCEPTED:
        local_list.station_version = version_number
        local_list.synced_entries = local_list.pending_entries or {}
    elif status == SendLocalListStatus.VERSION_MISMATCH:
        local_list.station_version = None
        local_list.synced_entries = {}
    local_list.pending_version = None
    local_list.pending_update_type = ""
    local_list.pending_entries = None
    local_list.last_status = status
    local_list.last_result_at = timezone.now()
    local_list.save()
    return local_list


def get_local_list_version_payload() -> dict[str, Any]:
    return {}


@transaction.atomic
def local_list_record_version(*, station: StationRef, version_number: int) -> bool:
    """Apply a GetLocalListVersionResponse. Returns whether the station holds the version we think it does;
    if not, its version becomes unknown and the next update is Full.

    A station whose list the CSMS does not manage (no list recorded, or one never sent) keeps its own list: no
    list is created here, so no sync sweep will ever replace the station's list with an empty one.
    """
    local_list = LocalAuthList.objects.select_for_update().filter(station_id=_pk(station)).first()
    if local_list is None or local_list.version == 0:
        return False
    if local_list.station_version == version_number:
        return True
    local_list.station_version = None
    local_list.synced_entries = {}
    local_list.save(update_fields=["station_version", "synced_entries"])
    return False


def clear_cache_payload() -> dict[str, Any]:
    return {}


# --- Metering -------------------------------------------------------------------------------------------------


# MeterSample's insert columns, in the model's order (fastorm.insert_tuples checks it once).
_SAMPLE_COLUMNS = (
    "station_id", "transaction_id", "evse_id", "from_transaction_event", "timestamp", "measurand", "phase",
    "location", "context", "value", "unit", "signed_meter_value",
)  # fmt: skip
SampleRow = tuple[int, int | None, int, bool, datetime, str, str, str, str, Decimal, str, dict[str, Any] | None]


def _sample_rows(
    *,
    station_id: int,
    evse_id: int,
    transaction_pk: int | None,
    samples: list[metering.Sample],
) -> list[SampleRow]:
    """The samples as MeterSample rows (tuples: no model instance on the hot path)."""
    from_event = transaction_pk is not None
    return [
        (station_id, transaction_pk, evse_id, from_event, s.timestamp, s.measurand, s.phase, s.location, s.context,
         s.value, s.unit, s.signed_meter_value)
        for s in samples
    ]  # fmt: skip


SAMPLE_ROWS_PER_INSERT = 500  # well inside every backend's limit on statement parameters


def _samples_insert(rows: list[SampleRow]) -> None:
    """Store samples; one already stored (a retried message) is skipped by the unique constraint."""
    for start in range(0, len(rows), SAMPLE_ROWS_PER_INSERT):
        fastorm.insert_tuples(
            MeterSample, _SAMPLE_COLUMNS, rows[start : start + SAMPLE_ROWS_PER_INSERT], ignore_conflicts=True
        )


def _events_flush(records: list[TransactionEventRecord]) -> None:
    """A group's buffered event rows (csms/groupscope.py): one INSERT, ``executemany``."""
    fastorm.insert(records, executemany=True)


def _samples_flush(batches: list[list[SampleRow]]) -> None:
    """A group's buffered samples (csms/groupscope.py): one INSERT, ``executemany``."""
    rows = [row for batch in batches for row in batch]
    fastorm.insert_tuples(MeterSample, _SAMPLE_COLUMNS, rows, ignore_conflicts=True, executemany=True)


def meter_values_record(*, station_id: int, evse_id: int, meter_values: list[dict[str, Any]]) -> int:
    """Store a MeterValues message's samples (not tied to a transaction: the spec sends those in
    TransactionEvent). A retried message adds nothing. Returns the number of samples received."""
    samples = metering.samples_from_meter_values(meter_values, parse_ocpp)
    rows = _sample_rows(station_id=station_id, evse_id=evse_id, transaction_pk=None, samples=samples)
    currents = observers.currents_from(samples) if observers.interested("metered", station_id) else {}
    scope = groupscope.current()
    if scope is not None and not currents:
        scope.defer("meter_samples", station_id, rows, _samples_flush)  # a blind insert: nothing reads it back here
    else:
        if scope is not None:
            scope.flush_for(station_id)
        _samples_insert(rows)
    if currents:
        observers.session_change_notify(observers.SessionChange("metered", station_id, evse_id, currents_a=currents))
    return len(rows)


def _metering_state_from_db(txn: ChargingTransaction) -> metering.MeteringState:
    """First/last/peak of each tracked series, read from the stored samples with index-driven queries (the cost does
    not grow with the length of the session)."""
    samples = MeterSample.objects.filter(transaction=txn)
    series: dict[tuple[str, str, str], metering.SeriesEnds] = {}
    keys = samples.filter(measurand__in=metering.TRACKED).values_list("measurand", "phase", "location")
    for key in sorted(set(keys.distinct().order_by())):
        qs = samples.filter(measurand=key[0], phase=key[1], location=key[2])
        first = qs.order_by("timestamp", "value").values_list("timestamp", "value")[0]
        last = qs.order_by("-timestamp", "-value").values_list("timestamp", "value")[0]
        series[key] = metering.SeriesEnds(first, last, qs.aggregate(peak=Max("value"))["peak"])
    return metering.MeteringState(series)


def _per_phase_power(txn: ChargingTransaction, state: metering.MeteringState) -> metering.PowerSummary:
    """Line-phase power readings summed per instant: the pure rule over the rows concerned."""
    rows = Q(pk__in=[])
    for _, phase, location in state.preferred(metering.POWER_IMPORT):
        rows |= Q(phase=phase, location=location)
    values = MeterSample.objects.filter(rows, transaction=txn, measurand=metering.POWER_IMPORT).values_list(
        "timestamp", "measurand", "phase", "location", "context", "value", "unit"
    )
    return metering.power_summary(metering.Sample(*row) for row in values)


def _metering_apply(txn: ChargingTransaction, state: metering.MeteringState) -> None:
    energy = state.energy()
    txn.meter_start_wh, txn.meter_stop_wh, txn.energy_wh = energy.meter_start_wh, energy.meter_stop_wh, energy.energy_wh
    power = state.power() or _per_phase_power(txn, state)
    txn.peak_power_w, txn.last_power_w = power.peak_power_w, power.last_power_w
    txn.metering_state = state.to_json()


def transaction_metering_refresh(txn: ChargingTransaction) -> None:
    """Recompute the denormalised energy/power fields (and the metering state) from the stored samples."""
    _metering_apply(txn, _metering_state_from_db(txn))


def transaction_metering_append(txn: ChargingTransaction, samples: list[metering.Sample]) -> None:
    """Update the energy/power fields with newly stored samples: from the transaction's metering state alone when
    they are later than every reading of their series (events in order, the usual case), else from the database."""
    if txn.metering_state is not None:
        state = metering.MeteringState.from_json(txn.metering_state)
        if state.append(samples):
            _metering_apply(txn, state)
            return
    groupscope.flush_for(txn.station_id)  # the samples read back include those a group holds in its buffer
    transaction_metering_refresh(txn)


# --- Transactions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransactionEventResult:
    transaction: ChargingTransaction
    duplicate: bool
    id_token_info: dict[str, Any] | None


def _last(events: list[dict[str, Any]], field: str) -> Any:
    """The value of the event with the highest seqNo that carries the field."""
    for event in reversed(events):
        value = event[field]
        if value not in (None, ""):
            return value
    return None


def _gaps(seq_nos: list[int]) -> list[int]:
    if not seq_nos:
        return []
    present = set(seq_nos)
    gaps: list[int] = []
    for n in range(min(seq_nos), max(seq_nos)):
        if n not in present:
            gaps.append(n)
            if len(gaps) >= MAX_RECORDED_GAPS:
                break
    return gaps


_LATEST_FIELDS = {
    # transaction field: event field
    "evse_id": "evse_id",
    "connector_id": "connector_id",
    "charging_state": "charging_state",
    "stopped_reason": "stopped_reason",
    "remote_start_id": "remote_start_id",
    "reservation_id": "reservation_id",
    "number_of_phases_used": "number_of_phases_used",
    "cable_max_current_a": "cable_max_current",
    "time_spent_charging_s": "time_spent_charging_s",
}


_TEXT_FIELDS = {"charging_state", "stopped_reason"}


def _session_token(events: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(idToken, type, answered status) of the session: the first (lowest seqNo) token the CSMS accepted, which is
    the one billed, not a group member's card that stopped it nor a refused card tried first; without an accepted
    one, the first reported."""
    with_token = [e for e in events if e["id_token_type"]]
    accepted = [e for e in with_token if e["id_token_status"] == AuthorizationStatus.ACCEPTED]
    chosen = next(iter(accepted or with_token), None)
    return (chosen["id_token"], chosen["id_token_type"], chosen["id_token_status"]) if chosen else ("", "", "")


def _token_key(id_token: str, token_type: str) -> tuple[str, str]:
    return id_token.lower(), token_type


def _token_refresh(txn: ChargingTransaction, known: tuple[tuple[str, str], IdToken | None] | None = None) -> None:
    """Link the session's token to the known IdToken; ``known`` is a (key, token) already looked up."""
    if not (txn.id_token and txn.id_token_type):
        txn.token = None
    elif known is not None and known[0] == _token_key(txn.id_token, txn.id_token_type):
        txn.token = known[1]
    else:
        txn.token = id_token_lookup(id_token=txn.id_token, token_type=txn.id_token_type)


def transaction_state_append(txn: ChargingTransaction, event: TransactionEventRecord) -> None:
    """Fast path of :func:`transaction_state_refresh` for an event whose seqNo is above every stored one (events
    arriving in order, the usual case): the same result without reading the other events."""
    assert txn.last_seq_no is not None and event.seq_no > txn.last_seq_no
    if event.event_type == TransactionEventType.STARTED and not txn.has_started_event:
        txn.has_started_event = True
        txn.started_at = event.timestamp
    elif not txn.has_started_event:
        txn.started_at = min(txn.started_at, event.timestamp)
    if event.event_type == TransactionEventType.ENDED and txn.is_active:
        txn.ended_at = event.timestamp
        txn.is_active = False
    for txn_field, event_field in _LATEST_FIELDS.items():
        value = getattr(event, event_field)
        if value not in (None, ""):
            setattr(txn, txn_field, value)
    if txn.stopped_reason == "" and not txn.is_active:
        txn.stopped_reason = "Local"
    txn.had_offline_events = txn.had_offline_events or event.offline
    # Capped before it is built: a station jumping from seqNo 1 to 2**31 must not make a list of 2 billion.
    missing = range(txn.last_seq_no + 1, min(event.seq_no, txn.last_seq_no + 1 + MAX_RECORDED_GAPS))
    txn.seq_no_gaps = (txn.seq_no_gaps + list(missing))[:MAX_RECORDED_GAPS]
    txn.event_count += 1
    txn.last_seq_no = event.seq_no
    txn.last_event_at = max(txn.last_event_at, event.timestamp) if txn.last_event_at else event.timestamp
    accepted = AuthorizationStatus.ACCEPTED
    if event.id_token_type and (
        not txn.id_token_type or (txn.id_token_status != accepted and event.id_token_status == accepted)
    ):
        txn.id_token, txn.id_token_type, txn.id_token_status = (
            event.id_token,
            event.id_token_type,
            event.id_token_status,
        )


_EVENT_FIELDS = (
    "seq_no", "event_type", "timestamp", "offline", "id_token", "id_token_type", "id_token_status",
    *sorted(set(_LATEST_FIELDS.values())),
)  # fmt: skip


def transaction_state_refresh(txn: ChargingTransaction, *, only: TransactionEventRecord | None = None) -> None:
    """Derive the transaction's state from all its stored events, ordered by seqNo (``only``: the transaction's
    one and only event, given instead of read back).

    started_at/ended_at come from the Started/Ended events whatever their arrival order; an Updated arriving after
    Ended (offline backlog) cannot reopen the transaction because is_active only depends on an Ended existing.
    The link to the known token is left to the caller (``_token_refresh``).
    """
    if only is not None:
        events = [{name: getattr(only, name) for name in _EVENT_FIELDS}]
    else:
        events = list(txn.events.order_by("seq_no").values(*_EVENT_FIELDS))
    started = [e for e in events if e["event_type"] == TransactionEventType.STARTED]
    ended = [e for e in events if e["event_type"] == TransactionEventType.ENDED]
    timestamps = [e["timestamp"] for e in events]
    txn.has_started_event = bool(started)
    # OCPP SPEC-SILENT: without a Started event (lost, or not yet replayed) the earliest event stands in for it.
    txn.started_at = started[0]["timestamp"] if started else min(timestamps)
    txn.ended_at = ended[0]["timestamp"] if ended else None
    txn.is_active = not ended
    for txn_field, event_field in _LATEST_FIELDS.items():
        value = _last(events, event_field)
        setattr(txn, txn_field, value if value is not None else ("" if txn_field in _TEXT_FIELDS else None))
    if txn.stopped_reason == "" and ended:
        # The spec lets the stoppedReason be omitted only when it is "Local".
        txn.stopped_reason = "Local"
    txn.id_token, txn.id_token_type, txn.id_token_status = _session_token(events)
    txn.had_offline_events = any(e["offline"] for e in events)
    seq_nos = [e["seq_no"] for e in events]
    txn.event_count = len(events)
    txn.last_seq_no = max(seq_nos)
    txn.seq_no_gaps = _gaps(seq_nos)
    txn.last_event_at = max(timestamps)


_TXN = "transaction"  # groupscope cache keys: (_TXN, station_id, transactionId) -> locked row, or None (none yet)
_NOT_READ = object()


@groupscope.preparer("TransactionEvent")
def _transactions_lock(scope: groupscope.GroupScope, calls: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """A group's TransactionEvents: every transaction they name read and locked in one statement (primary-key order:
    one lock order for every group), instead of one SELECT ... FOR UPDATE per event."""
    keys = sorted(
        {(station_id, p["transactionInfo"]["transactionId"]) for station_id, p in calls if "transactionInfo" in p}
    )
    found = fastorm.select_many(ChargingTransaction, ("station_id", "transaction_id"), keys, for_update=True)
    for station_id, transaction_id in keys:
        scope.cache[(_TXN, station_id, transaction_id)] = found.get((station_id, transaction_id))


groupscope.buffer_aware("TransactionEvent", "MeterValues")

_TRANSACTION_FOR_UPDATE = fastorm.CompiledGet(
    lambda station_id, transaction_id: ChargingTransaction.objects.select_for_update().filter(
        station_id=station_id, transaction_id=transaction_id
    ),
    sentinels=(-7_000_001, "\x00transaction-id"),
)


def transaction_event_apply(*, station_id: int, event: dict[str, Any]) -> TransactionEventResult:
    """Apply one TransactionEventRequest (already schema-validated).

    Idempotent per (station, transactionId, seqNo): stations retry with a new message id, and a retry gets the same
    answer and changes nothing. Never rejects: an Updated/Ended for an unknown transaction creates it.

    # OCPP SPEC-SILENT: the spec does not say how a CSMS recovers from rejecting a replayed event; this CSMS never
    # rejects one (a valid event is always stored), so a station's offline queue always drains.
    """
    info = event["transactionInfo"]
    timestamp = parse_ocpp(event["timestamp"])
    id_token = event.get("idToken")
    seq_no = event["seqNo"]
    scope = groupscope.current()
    key = (_TXN, station_id, info["transactionId"])
    # No savepoint: inside a CALL's transaction, a failure rolls the whole CALL back anyway.
    with transaction.atomic(savepoint=False):
        # Serialises concurrent events of one transaction (two connections during a reconnect). In a group, the
        # row was locked with the group's others at its start (or is the one an earlier event of the group left).
        cached: Any = scope.cache.get(key, _NOT_READ) if scope is not None else _NOT_READ
        txn: ChargingTransaction | None = (
            _TRANSACTION_FOR_UPDATE.get(station_id, info["transactionId"]) if cached is _NOT_READ else cached
        )
        if txn is None:
            # The row inserted is this transaction's until it commits (a concurrent insert of the same key waits
            # on it). A concurrent first event of the same transaction may have inserted it first: then lock that.
            new = ChargingTransaction(
                station_id=station_id, transaction_id=info["transactionId"], started_at=timestamp, metering_state={}
            )
            inserted = fastorm.insert_returning_pk(new, ignore_conflicts=True) is not None
            txn = new if inserted else _TRANSACTION_FOR_UPDATE.get(station_id, info["transactionId"])
        token_info, token = id_token_info(id_token=id_token) if id_token else (None, None)
        known = (_token_key(id_token["idToken"], id_token["type"]), token) if id_token else None
        token_before = (txn.id_token, txn.id_token_type)
        was_active = txn.is_active
        first = txn.last_seq_no is None  # no event stored yet (events are stored under this lock)
        # Above the highest stored seqNo it cannot be a retry: no need to look.
        in_order = not first and seq_no > txn.last_seq_no
        samples = metering.samples_from_meter_values(event["meterValue"], parse_ocpp) if event.get("meterValue") else []
        # The usual event (an in-order Updated of a running session, nothing for an observer) reads nothing more:
        # in a group its writes wait in the buffer. Any other first sends what this station's earlier CALLs left
        # there, so that what it reads is what they wrote.
        buffered = (
            scope is not None
            and in_order
            and event["eventType"] == TransactionEventType.UPDATED
            and not id_token
            and event.get("reservationId") is None
            and txn.is_active
            and not (observers.currents_from(samples) and observers.interested("updated", station_id))
        )
        if scope is not None and not buffered:
            scope.flush_for(station_id)
        if scope is not None:
            scope.cache[key] = txn  # a later event of the group for this transaction continues from this instance
        if not (first or in_order) and TransactionEventRecord.objects.filter(transaction=txn, seq_no=seq_no).exists():
            return TransactionEventResult(txn, True, token_info)
        evse = event.get("evse") or {}
        record = TransactionEventRecord(
            transaction=txn,
            seq_no=seq_no,
            event_type=event["eventType"],
            timestamp=timestamp,
            trigger_reason=event["triggerReason"],
            charging_state=info.get("chargingState", ""),
            evse_id=evse.get("id"),
            connector_id=evse.get("connectorId"),
            id_token=id_token["idToken"] if id_token else "",
            id_token_type=id_token["type"] if id_token else "",
            offline=bool(event.get("offline", False)),
            stopped_reason=info.get("stoppedReason", ""),
            remote_start_id=info.get("remoteStartId"),
            reservation_id=event.get("reservationId"),
            number_of_phases_used=event.get("numberOfPhasesUsed"),
            cable_max_current=event.get("cableMaxCurrent"),
            time_spent_charging_s=info.get("timeSpentCharging"),
            id_token_status=token_info["status"] if token_info else "",
        )
        if buffered:
            scope.defer("transaction_events", station_id, record, _events_flush)  # type: ignore[union-attr]
        else:
            fastorm.insert([record])  # a retry of a stored seqNo was answered above; a race fails on the constraint
        if in_order:
            transaction_state_append(txn, record)
        else:  # first event, or one arriving out of order: derive everything again
            transaction_state_refresh(txn, only=record if first else None)
        token_changed = (txn.id_token, txn.id_token_type) != token_before
        if token_changed:  # the session's token changed: link it
            _token_refresh(txn, known)
        if first or token_changed:
            # The tariff version in force at the start, for the session's token (a plug-first session gets its
            # token later: the token-group override then applies). One query; never on the usual in-order event.
            tariffs.transaction_tariff_pin(txn)
        if samples:
            rows = _sample_rows(station_id=station_id, evse_id=txn.evse_id or 0, transaction_pk=txn.pk, samples=samples)
            if buffered:
                scope.defer("meter_samples", station_id, rows, _samples_flush)  # type: ignore[union-attr]
            else:
                _samples_insert(rows)
            transaction_metering_append(txn, samples)
        if not txn.is_active and txn.tariff_version_id is not None:
            # Ended (or a late event of an ended session): the final cost, once, in the same transaction; the
            # response's totalCost and the CDR read it. Two queries (charging states, energy readings).
            tariffs.transaction_cost_store(txn)
        if token_info is not None and record.event_type == TransactionEventType.STARTED and txn.tariff_version_id:
            token_info = tariffs.id_token_info_with_tariff(token_info, version=txn.tariff_version)
        if record.reservation_id is not None:  # rare: one indexed UPDATE only when the event names a reservation
            reservations.reservation_consume(
                station_id=station_id, reservation_id=record.reservation_id, transaction_pk=txn.pk
            )
        if buffered:
            scope.defer("transactions", station_id, txn, fastorm.update_many, key=txn.pk)  # type: ignore[union-attr]
        else:
            fastorm.update_changed(txn)
        if observers.has_observers():  # e.g. site load management and TxProfiles dropped (smartcharging)
            kind = "ended" if not txn.is_active else "started" if first or record.event_type == "Started" else "updated"
            ended_now = was_active and not txn.is_active  # once per session
            currents = observers.currents_from(samples)
            # An in-order Updated event without a current reading tells an observer nothing: not notified, so the
            # usual event stays at its six statements.
            if kind != "updated" or currents:
                observers.session_change_notify(
                    observers.SessionChange(
                        kind,
                        station_id,
                        txn.evse_id,
                        transaction_pk=txn.pk,
                        currents_a=currents,
                        transaction_id=txn.transaction_id,
                        ended_now=ended_now,
                        remote_start_command_id=(
                            RemoteStartRequest.objects.filter(pk=txn.remote_start_id)
                            .values_list("command_id", flat=True)
                            .first()
                            if ended_now and txn.remote_start_id is not None
                            else None
                        ),
                    )
                )
        # transaction.started / .updated / .ended, sent after commit (nothing for a rolled-back event).
        webhooks.emit(f"transaction.{record.event_type.lower()}", lambda: transaction_webhook_data(txn))
    return TransactionEventResult(txn, False, token_info)


def transaction_webhook_data(txn: ChargingTransaction) -> dict[str, Any]:
    """The ``data`` of transaction.* webhooks (the API's transaction fields)."""
    return {
        "id": txn.pk,
        "station": txn.station.identity,
        "transaction_id": txn.transaction_id,
        "evse_id": txn.evse_id,
        "connector_id": txn.connector_id,
        "id_token": txn.id_token,
        "started_at": txn.started_at,
        "ended_at": txn.ended_at,
        "stopped_reason": txn.stopped_reason,
        "charging_state": txn.charging_state,
        "energy_wh": float(txn.energy_wh) if txn.energy_wh is not None else None,
        "is_active": txn.is_active,
    }


def transaction_event_response(result: TransactionEventResult, event_type: str) -> dict[str, Any]:
    response: dict[str, Any] = {}
    if result.id_token_info is not None:
        response["idTokenInfo"] = result.id_token_info
    if event_type == TransactionEventType.ENDED:
        response.update(tariffs.total_cost_response(result.transaction))
    return response


# --- Commands to stations (through the command pipeline) -------------------------------------------------------


class TransactionCommandError(ValueError):
    """A remote start/stop or list update that cannot be sent as asked."""


def remote_start(
    *, station: ChargingStation, id_token: dict[str, Any], evse_id: int | None = None, user: Sender = None
) -> RemoteStartRequest:
    """Ask the station to start a transaction; the transaction it reports later carries our ``remoteStartId``.

    The RemoteStartRequest itself is recorded by :func:`remote_start_on_sending`, as for any door's command."""
    command = command_helpers.request_start_transaction(
        station, id_token=id_token, remote_start_id=0, evse_id=evse_id, user=user
    )
    return RemoteStartRequest.objects.get(command=command)


def remote_start_on_sending(command: Command) -> None:
    """Send hook of every RequestStartTransaction (dashboard, admin, API, bulk, jobs): record the remote start and
    send its id as ``remoteStartId`` (replacing any the caller gave), so the session the station reports is linked.

    # OCPP SPEC-SILENT: the spec lets the CSMS choose remoteStartId freely; this CSMS allocates it (the
    # RemoteStartRequest's id), so two doors can never send the same id to one station.
    """
    payload = command.request
    request = RemoteStartRequest.objects.create(
        station_id=command.station_id, command=command, id_token=payload["idToken"], evse_id=payload.get("evseId")
    )
    command.request = {**payload, "remoteStartId": request.pk}


def remote_start_transaction(*, request: RemoteStartRequest) -> ChargingTransaction | None:
    """The transaction started by a remote start, once the station has reported it."""
    from . import selectors

    return selectors.transaction_by_remote_start_id(request.station_id, request.pk)


def remote_stop(*, txn: ChargingTransaction, user: Sender = None) -> Command:
    """Ask the station to stop one of its transactions (RequestStopTransaction)."""
    if not txn.is_active:
        raise TransactionCommandError(f"transaction {txn.transaction_id} has already ended")
    return command_helpers.request_stop_transaction(txn.station, transaction_id=txn.transaction_id, user=user)


def transaction_status_on_answered(command: Command) -> None:
    """GetTransactionStatus answer hook: the answer is stored on the session it asked about (shown on its page and
    in the API); messagesInQueue means the station still holds events of it to deliver.

    # OCPP SPEC-SILENT: without a transactionId the answer is about the station's whole queue, not a session,
    # and an answer about a session the CSMS never saw has nowhere to go: both only in the command's row.
    """
    transaction_id = command.request.get("transactionId")
    response = command.response or {}
    if not transaction_id or "messagesInQueue" not in response:
        return
    ChargingTransaction.objects.filter(station_id=command.station_id, transaction_id=transaction_id).update(
        status_checked_at=command.finished_at or timezone.now(),
        ongoing_indicator=response.get("ongoingIndicator"),
        messages_in_queue=response["messagesInQueue"],
    )


def local_lists_token_remove(*, id_token: str) -> int:
    """Take every id token with this string (any type) off the local lists the CSMS manages for stations; the next
    sync of each list sends its removal (Differential) or the list without it (Full). Returns how many list entries
    were removed (one statement)."""
    through = LocalAuthList.tokens.through
    deleted, _ = through.objects.filter(idtoken__id_token__iexact=id_token).delete()
    return deleted


def local_list_sync(*, station: ChargingStation, full: bool = False, user: Sender = None) -> Command | None:
    """Send the station the update that brings its local list to the desired state (None: nothing to send)."""
    with transaction.atomic():
        payload = local_list_build_update(station=station, full=full)
        if payload is None:
            return None
        return command_send(station=station, action="SendLocalList", payload=payload, user=user)


def local_list_on_send_answered(command: Command) -> None:
    """SendLocalList answered: record the station's status for that version (runs inside command_finish)."""
    local_list_record_result(
        station=command.station_id,
        version_number=command.request["versionNumber"],
        status=(command.response or {}).get("status", ""),
    )


def local_list_on_version_answered(command: Command) -> None:
    local_list_record_version(station=command.station_id, version_number=(command.response or {})["versionNumber"])


# --- Id token administration (dashboard) ----------------------------------------------------------------------


def id_token_create(
    *,
    id_token: str,
    token_type: str = IdTokenType.ISO14443,
    status: str = AuthorizationStatus.ACCEPTED,
    expires_at: datetime | None = None,
    description: str = "",
) -> IdToken:
    """A new token; raises django ValidationError for bad fields or a duplicate (case-insensitive) token."""
    from django.core.exceptions import ValidationError

    token = IdToken(
        id_token=id_token.strip(),
        type=token_type,
        status=status,
        expires_at=expires_at,
        description=description.strip(),
    )
    token.full_clean(validate_constraints=False)
    if id_token_conflict(id_token=token.id_token, token_type=token.type):
        raise ValidationError({"id_token": f"{token.id_token} ({token.type}) already exists."})
    token.save()
    return token


def id_token_set_status(*, token_pk: int, status: str) -> IdToken:
    """Block / unblock (or any AuthorizationStatus): the next Authorize or TransactionEvent gets the new answer."""
    if status not in AuthorizationStatus.values:
        raise ValueError(f"{status!r} is not an authorization status")
    token = IdToken.objects.get(pk=token_pk)
    token.status = status
    token.save(update_fields=["status", "updated_at"])
    return token
