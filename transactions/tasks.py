"""Transactions jobs (Celery): keep stations' local authorization lists in sync, expire reservations. Idempotent,
by id."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Q

from stations.models import ChargingStation

from . import reservations, services
from .models import LocalAuthList


@shared_task(name="transactions.local_list_sync", ignore_result=True)
def local_list_sync_task(station_id: int, full: bool = False) -> int | None:
    """Send one station the update its list needs (nothing when already in sync). Returns the command id."""
    station = ChargingStation.objects.filter(pk=station_id, is_online=True).first()
    if station is None:
        return None  # offline: the periodic sweep catches up when it is back
    command = services.local_list_sync(station=station, full=full)
    return command.pk if command else None


@shared_task(name="transactions.local_lists_sync_all", ignore_result=True)
def local_lists_sync_all_task() -> int:
    """Periodic: every online station with a local list gets what changed since its last acknowledged version."""
    station_ids = list(
        # A pending update that was never answered is superseded by the next one (its late answer is ignored).
        # Only lists the CSMS manages (sent once, or holding tokens): another one is the station's own business.
        LocalAuthList.objects.filter(Q(version__gt=0) | Q(tokens__isnull=False), station__is_online=True)
        .values_list("station_id", flat=True)
        .distinct()
    )
    for station_id in station_ids:
        local_list_sync_task.delay(station_id)
    return len(station_ids)


@shared_task(name="transactions.reservations_expire", ignore_result=True)
def reservations_expire_task() -> int:
    """Periodic: open reservations past their expiry become expired (never one the station already ended)."""
    return reservations.reservations_expire()


@shared_task(name="transactions.cost_updates_send", ignore_result=True)
def cost_updates_send_task() -> int:
    """Periodic (CSMS_COST_UPDATE_INTERVAL_S): running costs refreshed, CostUpdated sent where the cost changed."""
    from . import tariffs

    return tariffs.cost_updates_send().sent
