"""Session observers: other apps' reactions to a session starting, ending or reporting its current draw.

A small explicit registry (as the command hooks): ``@on_session_change`` registers ``func(change)``, called inside
the CALL's database transaction by ``transactions.services`` (``transaction_event_apply``, ``meter_values_record``),
so an observer records with the station's data and enqueues slow work on commit. Observers must be cheap (they run
on the station path); a failing observer is logged and never fails the station's message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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


SessionObserver = Callable[[SessionChange], None]
_observers: list[SessionObserver] = []


def on_session_change(func: SessionObserver) -> SessionObserver:
    if func not in _observers:
        _observers.append(func)
    return func


def has_observers() -> bool:
    return bool(_observers)


def session_change_notify(change: SessionChange) -> None:
    for observer in _observers:
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
