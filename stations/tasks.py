"""Periodic station jobs (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="stations.mark_stale_offline", ignore_result=True)
def mark_stale_offline() -> int:
    """Stations whose daphne process died stay "online" in the DB; this corrects them. Idempotent."""
    return services.stations_mark_stale_offline()
