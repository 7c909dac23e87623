"""Celery beat's scheduler: the stock persistent one that also records beat's heartbeat (``csms.jobs``)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from celery.schedules import schedule
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    """Records "beat seen" every ``CSMS_JOBS_HEARTBEAT_S`` from the scheduler loop itself (not through a job, so
    beat shows alive even while no worker runs), and sends each periodic job at most once per slot of its interval
    whatever the number of beats (the beat lock, ``csms.jobs``)."""

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if not self.claim(entry):
            logger.info("beat: %s already sent in this slot (another or a restarted beat): skipped", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def claim(self, entry: ScheduleEntry) -> bool:
        """Whether this beat is the first to send ``entry`` in its current slot (interval schedules; others are
        sent as Celery schedules them). The database away: sent anyway (jobs are idempotent; better twice than
        a day's job lost)."""
        if not isinstance(entry.schedule, schedule):
            return True
        from django.db import close_old_connections

        from . import jobs

        every_s = entry.schedule.run_every.total_seconds()
        try:
            close_old_connections()  # one broken by a database restart is dropped, not reused forever
            return jobs.job_claim(
                job=f"beat:{entry.name}"[:100], slot=jobs.slot_of(every_s=every_s, now=timezone.now())
            )
        except Exception:
            logger.exception("beat: could not claim %s; sending it unclaimed", entry.name)
            return True

    _heartbeat_at = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(settings.CSMS_JOBS_HEARTBEAT_S)
        if time.monotonic() - self._heartbeat_at >= interval:
            try:
                from . import jobs

                jobs.heartbeat_record(process="beat", hostname=socket.gethostname())
                self._heartbeat_at = time.monotonic()
            except Exception:  # the database away for a moment: beat goes on sending jobs
                logger.exception("could not record beat's heartbeat")
        return min(float(super().tick(*args, **kwargs)), interval)
