"""Celery beat's scheduler: the stock persistent one that also records beat's heartbeat (``csms.jobs``)."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


class Scheduler(PersistentScheduler):
    """Records "beat seen" every ``CSMS_JOBS_HEARTBEAT_S`` from the scheduler loop itself (not through a job, so
    beat shows alive even while no worker runs)."""

    _heartbeat_at = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(settings.CSMS_JOBS_HEARTBEAT_S)
        if time.monotonic() - self._heartbeat_at >= interval:
            try:
                from . import jobs

                # No request or task cycle closes beat's broken connections: after a database restart the old one
                # would fail every heartbeat for good (the overview would show beat dead while it runs).
                close_old_connections()
                jobs.heartbeat_record(process="beat", hostname=socket.gethostname())
                self._heartbeat_at = time.monotonic()
            except Exception:  # the database away for a moment: beat goes on sending jobs
                logger.exception("could not record beat's heartbeat")
            finally:
                close_old_connections()
        return min(float(super().tick(*args, **kwargs)), interval)
