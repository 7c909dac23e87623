"""Reservations (block H): ReserveNow / CancelReservation through the command pipeline, the station's
ReservationStatusUpdate, consumption by a transaction and the expiry sweep.

Every ReserveNow, whichever door sent it (this service, the dashboard's "any request" form, the admin, the API's
commands endpoint, a job), records its Reservation in the pipeline's send hook; the answer hooks move it on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from csms.timeutil import format_ocpp, parse_ocpp
from stations.commands import command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, CommandState

from .models import OPEN_RESERVATION_STATES, IdTokenType, Reservation, ReservationState

logger = logging.getLogger(__name__)

# ReserveNow answers that end the reservation at once (reason = the status).
_REFUSALS = {"Rejected", "Occupied", "Faulted", "Unavailable"}


class ReservationError(ValueError):
    """A reservation action that cannot be done as asked (e.g. cancelling an ended reservation)."""


def reservation_create(
    *,
    station: ChargingStation,
    id_token: str,
    expires_at: datetime,
    id_token_type: str = IdTokenType.CENTRAL,
    evse_id: int | None = None,
    connector_type: str = "",
    group_id_token: str = "",
    group_id_token_type: str = "",
    user: Sender = None,
) -> Reservation:
    """Send ReserveNow; the reservation is ``requested`` until the station answers (or ``failed`` when offline).

    Raises CommandValidationError (nothing stored) for a request the schema refuses.
    """
    payload: dict[str, Any] = {
        "expiryDateTime": format_ocpp(expires_at),
        "idToken": {"idToken": id_token, "type": id_token_type},
    }
    if evse_id is not None:
        payload["evseId"] = evse_id
    if connector_type:
        payload["connectorType"] = connector_type
    if group_id_token:
        payload["groupIdToken"] = {"idToken": group_id_token, "type": group_id_token_type or id_token_type}
    command = command_send(station=station, action="ReserveNow", payload=payload, user=user)
    return Reservation.objects.get(command=command)


def reservation_on_sending(command: Command) -> None:
    """Send hook of every ReserveNow: allocate the id (per station) and record the reservation.

    Runs under command_send's lock on the station row, so two concurrent ReserveNow never get the same id.
    # OCPP SPEC-SILENT: the spec does not say who picks the reservation id; the CSMS does (any given ``id`` is
    # replaced), so ids never collide between doors and a TransactionEvent's reservationId is unambiguous.
    """
    payload = command.request
    last = Reservation.objects.filter(station_id=command.station_id).aggregate(m=Max("reservation_id"))["m"]
    group = payload.get("groupIdToken") or {}
    offline = command.state == CommandState.OFFLINE
    reservation = Reservation.objects.create(
        station_id=command.station_id,
        reservation_id=(last or 0) + 1,
        command=command,
        evse_id=payload.get("evseId"),
        connector_type=payload.get("connectorType", ""),
        id_token=payload["idToken"]["idToken"],
        id_token_type=payload["idToken"]["type"],
        group_id_token=group.get("idToken", ""),
        group_id_token_type=group.get("type", ""),
        expires_at=parse_ocpp(payload["expiryDateTime"]),
        state=ReservationState.FAILED if offline else ReservationState.REQUESTED,
        reason="station not connected" if offline else "",
        ended_at=timezone.now() if offline else None,
    )
    command.request = {**payload, "id": reservation.reservation_id}


def _end(qs: Any, *, state: str, reason: str) -> int:
    """End the open reservations of ``qs``; ended ones are never touched again. Returns how many changed."""
    now = timezone.now()
    return qs.filter(state__in=OPEN_RESERVATION_STATES).update(state=state, reason=reason, ended_at=now, updated_at=now)


def reservation_on_reserve_answered(command: Command) -> None:
    """ReserveNow answered: Accepted makes it active; Rejected/Occupied/Faulted/Unavailable end it with that
    reason (runs inside command_finish)."""
    status = (command.response or {}).get("status", "")
    qs = Reservation.objects.filter(command=command)
    if status == "Accepted":
        qs.filter(state=ReservationState.REQUESTED).update(state=ReservationState.ACTIVE, updated_at=timezone.now())
    elif status in _REFUSALS:
        _end(qs, state=ReservationState.REJECTED, reason=status)


def reservation_cancel(*, reservation: Reservation, user: Sender = None) -> Command:
    """Send CancelReservation; the reservation becomes ``cancelled`` when the station accepts."""
    if not reservation.is_open:
        raise ReservationError(f"reservation {reservation.reservation_id} is {reservation.state}: nothing to cancel")
    with transaction.atomic():
        command = command_send(
            station=reservation.station,
            action="CancelReservation",
            payload={"reservationId": reservation.reservation_id},
            user=user,
        )
        Reservation.objects.filter(pk=reservation.pk).update(cancel_command=command, updated_at=timezone.now())
    return command


def reservation_on_cancel_answered(command: Command) -> None:
    """CancelReservation answered (from any door): Accepted cancels it; Rejected (the station knows no such
    reservation) leaves it to the station's own ReservationStatusUpdate or the expiry sweep."""
    if (command.response or {}).get("status") != "Accepted":
        return
    qs = Reservation.objects.filter(station_id=command.station_id, reservation_id=command.request["reservationId"])
    _end(qs, state=ReservationState.CANCELLED, reason="cancelled")


def reservation_status_update(*, station_id: int, reservation_id: int, status: str) -> bool:
    """The station's ReservationStatusUpdate (Expired or Removed). Returns whether a reservation changed.

    # OCPP SPEC-SILENT: an update for a reservation the CSMS does not know, or one already ended (e.g. expired
    # by the sweep a moment earlier), is acknowledged and changes nothing.
    """
    state = ReservationState.EXPIRED if status == "Expired" else ReservationState.REMOVED
    qs = Reservation.objects.filter(station_id=station_id, reservation_id=reservation_id)
    return _end(qs, state=state, reason=status) > 0


def reservation_consume(*, station_id: int, reservation_id: int, transaction_pk: int) -> int:
    """A TransactionEvent carrying ``reservationId``: the reservation is consumed by that transaction.

    One indexed UPDATE (the hot path). The station is the authority: a reservation the sweep expired a moment
    before (clocks differ) is consumed all the same; cancelled/removed/rejected ones stay as they are.
    """
    return Reservation.objects.filter(
        station_id=station_id,
        reservation_id=reservation_id,
        state__in=(*OPEN_RESERVATION_STATES, ReservationState.EXPIRED),
    ).update(state=ReservationState.CONSUMED, transaction_id=transaction_pk, reason="", updated_at=timezone.now())


def reservation_on_reserve_failed(command: Command) -> None:
    """ReserveNow got a CALLERROR (or a schema-invalid answer, or the connection closed before it was sent): the
    reservation ends ``failed`` at once. A timed-out ReserveNow stays requested until its expiry: the station may
    have reserved all the same (its ReservationStatusUpdate or a consuming TransactionEvent still counts)."""
    if command.state != CommandState.FAILED:
        return
    reason = f"CALLERROR {command.error_code}" if command.error_code else "failed: " + command.error_description
    _end(
        Reservation.objects.filter(command=command, state=ReservationState.REQUESTED),
        state=ReservationState.FAILED,
        reason=reason[:40],
    )


def reservations_expire(*, now: datetime | None = None) -> int:
    """Beat job: open reservations past their expiry become ``expired``. Idempotent; reservations the station
    already ended (ReservationStatusUpdate), or that ended any other way, are never touched.

    It also ends as ``failed`` a requested reservation whose ReserveNow got a CALLERROR (no answer hook runs for
    one). A timed-out ReserveNow stays requested until its expiry: the station may have reserved all the same.
    """
    now = now or timezone.now()
    refused = Reservation.objects.filter(state=ReservationState.REQUESTED, command__state=CommandState.FAILED)
    _end(refused, state=ReservationState.FAILED, reason="the station refused the ReserveNow call")
    qs = Reservation.objects.filter(expires_at__lte=now)
    return _end(qs, state=ReservationState.EXPIRED, reason="expiry passed")
