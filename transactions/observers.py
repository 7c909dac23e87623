"""Session observers: other apps' reactions to a session starting, ending or reporting its current draw; the one
registry through which the transactions app tells others (apps talk through services, not signals).

``on_session_change(func, kinds=...)`` registers ``func(change)``, called inside the CALL's database transaction by
``transactions.services`` (``transaction_event_apply``, ``meter_values_record``), so an observer records with the
station's data and enqueues slow work on commit: e.g. site load management recomputes (smartcharging/sites.py) and,
once per session when its Ended event is applied (``change.ended_now``), the smart charging app drops the session's
TxProfiles from its record of what the station has installed, as the station does (smartcharging/profiles.py).
Observers run in registration order (the smart charging app registers the sites' before the profiles', one lock
order), must be cheap (they run on the station path), and each runs in a savepoint: a failing observer is logged
and never fails the station's message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from .metering import Sample

logger = logging.getLogger(__name__)

CURRENT_IMPORT = "Current.Import"


@dataclass(frozen=True, slots=True)
class SessionChange:
    kind: str  # "started", "ended", "updated" (TransactionEvent) or "metered" (MeterValues)
    station_id: int
    evse_id: int | None
    transaction_pk: int | None = None
    # Latest Current.Import per phase ("L1", "L2", "L3"; "" for a phase-less reading), A.
    currents_a: dict[str, Decimal] = field(default_factory=dict)
    # The station's transactionId (TransactionEvent changes).
    transaction_id: str = ""
    # The session's Ended event was applied by this change: true once per session ("ended" is also the kind of a
    # late event of a session already ended).
    ended_now: bool = False
    # The RequestStartTransaction command that started the session, if any (set when ended_now).
    remote_start_command_id: int | None = None


SessionObserver = Callable[[SessionChange], None]
# Whether an observer has anything to do for a station (cheap: e.g. a cached membership), asked before its savepoint.
StationFilter = Callable[[int], bool]
KINDS = frozenset({"started", "ended", "updated", "metered"})
_observers: list[tuple[SessionObserver, frozenset[str], StationFilter | None]] = []


def on_session_change(
    func: SessionObserver, *, kinds: Iterable[str] = KINDS, stations: StationFilter | None = None
) -> SessionObserver:
    """Register ``func(change)`` for the changes of ``kinds`` (default all): an observer of a few kinds costs the
    others nothing (no savepoint on the station path). ``stations(station_id)``: whether the observer cares about
    a station at all (e.g. it belongs to a site); a station it does not care about costs no savepoint either, and its
    usual events stay on the group commit's buffered path (csms/groupscope.py)."""
    wanted = frozenset(kinds)
    if not wanted <= KINDS:
        raise ValueError(f"unknown session change kinds: {sorted(wanted - KINDS)}")
    if all(registered is not func for registered, _, _ in _observers):
        _observers.append((func, wanted, stations))
    return func


def has_observers() -> bool:
    return bool(_observers)


def interested(kind: str, station_id: int) -> bool:
    """Whether any observer wants a change of ``kind`` at ``station_id`` (without building the change)."""
    return any(kind in kinds and (stations is None or stations(station_id)) for _, kinds, stations in _observers)


def session_change_notify(change: SessionChange) -> None:
    for observer, kinds, stations in _observers:
        if change.kind not in kinds or (stations is not None and not stations(change.station_id)):
            continue
        try:
            with transaction.atomic():  # a savepoint: a failing observer never loses the station's data
                observer(change)
        except Exception:
            logger.exception("session observer %r failed", observer)


def currents_from(samples: list[Sample]) -> dict[str, Decimal]:
    """The latest Current.Import reading per phase among normalised samples."""
    latest: dict[str, tuple[datetime, Decimal]] = {}
    for s in samples:
        if s.measurand != CURRENT_IMPORT or s.unit != "A":
            continue
        phase = s.phase[:2] if s.phase.startswith("L") else s.phase  # "L1-N" -> "L1"
        if phase not in latest or s.timestamp >= latest[phase][0]:
            latest[phase] = (s.timestamp, s.value)
    return {phase: value for phase, (_, value) in latest.items()}
