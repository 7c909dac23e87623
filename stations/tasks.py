"""Station jobs (Celery). Tasks take ids, load fresh state and are idempotent."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from csms import jobs

from . import commands, connections, leases, message_log
from .models import ChargingStation


@shared_task(name="stations.command_send")
def command_send_task(station_id: int, action: str, payload: dict[str, Any], user_id: int | None = None) -> int:
    """Send a command from a job (e.g. scheduled); returns the Command id. Not retried: a resend is a new command."""
    station = ChargingStation.objects.get(pk=station_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    return commands.command_send(station=station, action=action, payload=payload, user=user).pk


@shared_task(name="stations.commands_expire_stale")
def commands_expire_stale_task() -> int:
    """Periodic: end commands whose server process vanished (see ``commands.commands_expire_stale``)."""
    # OCPP SPEC-SILENT: how long a command may stay unanswered in our queue; ten call timeouts, at least 10 min.
    return commands.commands_expire_stale(older_than_s=max(600, 10 * settings.CSMS_CALL_TIMEOUT_S))


@shared_task(name="stations.mark_stale_offline", ignore_result=True)
def mark_stale_offline() -> int:
    """Stations whose daphne process died stay "online" in the DB; this corrects them. Idempotent."""
    return connections.stations_mark_stale_offline()


def _retention_every_s() -> float:
    return float(settings.CSMS_MESSAGE_LOG_RETENTION_EVERY_S)


@shared_task(name="stations.message_log_retention", ignore_result=True)
@jobs.once_per_slot("stations.message_log_retention", every_s=_retention_every_s)
def message_log_retention() -> int:
    """Periodic (hourly): delete message-log rows older than CSMS_MESSAGE_LOG_RETENTION_DAYS (0: keep all), in
    batches; also forgets beat-lock claims and ended server-process leases older than a week."""
    jobs.job_runs_prune(older_than_days=7)
    leases.processes_prune(older_than_days=7)
    if settings.CSMS_MESSAGE_LOG_RETENTION_DAYS <= 0:
        return 0
    return message_log.message_log_prune(
        older_than_days=settings.CSMS_MESSAGE_LOG_RETENTION_DAYS,
        batch_rows=settings.CSMS_MESSAGE_LOG_RETENTION_BATCH,
        pause_s=settings.CSMS_MESSAGE_LOG_RETENTION_PAUSE_MS / 1000,
    )
