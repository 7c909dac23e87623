"""Project-level jobs: the worker's heartbeat (sent by beat, so its runs also show that beat sends jobs)."""

from __future__ import annotations

import socket
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from . import jobs


@shared_task(name="csms.jobs_heartbeat", bind=True, ignore_result=True)
def jobs_heartbeat(self: Task) -> None:
    """Periodic: the worker that runs this records that it is alive."""
    jobs.heartbeat_record(process="worker", hostname=self.request.hostname or socket.gethostname())


@worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """A worker that just started is alive before beat's next heartbeat job reaches it."""
    jobs.heartbeat_record(process="worker", hostname=str(getattr(sender, "hostname", "") or socket.gethostname()))
