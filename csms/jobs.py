"""What every Celery job shares: the beat lock, delayed enqueues within the broker's visibility timeout, and the
worker's and beat's heartbeats that the dashboard shows.

- Beat lock: beat itself claims (``beat:<entry>``, slot) in the database (``csms.JobRun``) before it sends a
  periodic job (``csms.beat.Scheduler.apply_entry``): a restarted beat (its schedule file lost) or a second beat
  sends each job once per slot of its interval. Jobs whose body must not run twice even when a task is delivered
  twice claim (job, slot) themselves too (``once_per_slot``); a redelivered task of a killed worker is run again
  (acks late, reject on worker lost): every task is idempotent.
- Countdowns: Redis redelivers an unacknowledged task (acks late) after ``CELERY_BROKER_TRANSPORT_OPTIONS
  ["visibility_timeout"]``; a task held for a countdown longer than that would be delivered twice. ``later``
  enqueues with a countdown only below ``CSMS_CELERY_MAX_COUNTDOWN_S``; a longer wait is state in the database that
  a beat sweep picks up when it is due (e.g. a webhook delivery's ``next_attempt_at``).
- Heartbeats: beat records itself from its scheduler loop (``csms.beat.Scheduler``), the worker each time it runs
  the ``csms.jobs_heartbeat`` job that beat sends (and when it starts).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import JobHeartbeat, JobRun

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


# --- Delayed enqueues ---------------------------------------------------------------------------------------------
def later(task: Any, *, args: list[Any], delay_s: float) -> bool:
    """Enqueue ``task(*args)`` in ``delay_s`` seconds if that is within ``CSMS_CELERY_MAX_COUNTDOWN_S`` (below the
    broker's visibility timeout); otherwise enqueue nothing: the caller's state in the database is due then and a
    beat sweep sends it. Returns whether a task was enqueued."""
    if delay_s > settings.CSMS_CELERY_MAX_COUNTDOWN_S:
        return False
    task.apply_async(args=args, countdown=max(0.0, delay_s))
    return True


# --- Beat lock ----------------------------------------------------------------------------------------------------
def slot_of(*, every_s: float, now: datetime) -> str:
    """The schedule slot ``now`` falls in for a job run every ``every_s`` seconds (aligned to the epoch, UTC)."""
    start = now.timestamp() // every_s * every_s
    at = datetime.fromtimestamp(start, tz=now.tzinfo)
    if float(every_s).is_integer():
        return at.strftime("%Y-%m-%dT%H:%M:%S")
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]  # sub-second schedules (tests): slots in milliseconds


def job_claim(*, job: str, slot: str) -> bool:
    """Claim ``slot`` of ``job``: True for the first claimant only (a unique row, committed at once)."""
    try:
        with transaction.atomic():
            JobRun.objects.create(job=job, slot=slot)
    except IntegrityError:
        return False
    return True


def job_finish(*, job: str, slot: str, result: Any) -> None:
    JobRun.objects.filter(job=job, slot=slot).update(finished_at=timezone.now(), result=result)


def once_per_slot(job: str, *, every_s: Callable[[], float]) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Decorate a beat job's body: it runs at most once per slot of its schedule (``every_s()`` seconds, read at
    run time from the settings); a second call in the same slot returns None without running."""

    def decorate(func: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
            slot = slot_of(every_s=every_s(), now=timezone.now())
            if not job_claim(job=job, slot=slot):
                logger.info("job %s: slot %s already ran (a second beat?), skipped", job, slot)
                return None
            result = func(*args, **kwargs)
            job_finish(job=job, slot=slot, result=result if isinstance(result, int | str | dict | list) else None)
            return result

        return wrapper

    return decorate


def job_runs_prune(*, older_than_days: int) -> int:
    """Forget claims older than any slot still in play."""
    deleted, _ = JobRun.objects.filter(started_at__lt=timezone.now() - timedelta(days=older_than_days)).delete()
    return deleted


# --- Heartbeats ---------------------------------------------------------------------------------------------------
def heartbeat_record(*, process: str, hostname: str = "") -> None:
    JobHeartbeat.objects.update_or_create(
        process=process, defaults={"seen_at": timezone.now(), "hostname": hostname[:255]}
    )


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    process: str
    label: str
    seen_at: datetime | None
    alive: bool


@dataclass(frozen=True, slots=True)
class JobsStatus:
    eager: bool  # no broker: tasks run in the process that enqueues them, no beat (daphne alone, no REDIS_URL)
    processes: tuple[ProcessStatus, ...]


def jobs_status() -> JobsStatus:
    """Whether worker and beat were seen within ``CSMS_JOBS_ALIVE_S`` (one query; none in eager mode)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return JobsStatus(eager=True, processes=())
    now = timezone.now()
    seen = dict(JobHeartbeat.objects.values_list("process", "seen_at"))
    alive_s = settings.CSMS_JOBS_ALIVE_S
    return JobsStatus(
        eager=False,
        processes=tuple(
            ProcessStatus(
                process=value,
                label=str(label),
                seen_at=seen.get(value),
                alive=seen.get(value) is not None and (now - seen[value]).total_seconds() <= alive_s,
            )
            for value, label in JobHeartbeat.Process.choices
        ),
    )
