"""A test-only Celery job for the worker-killed test (loaded by the test's worker with ``-I``): idempotent steps
whose effect (one marker row per step, ``csms.JobRun``) a redelivery must neither lose nor repeat."""

from __future__ import annotations

import time
import uuid

from celery import shared_task

from csms.models import JobRun


@shared_task(name="tests.ops.slow_steps")
def slow_steps(run: str, steps: int, pause_s: float) -> int:
    """Each step writes its marker once (get_or_create on the unique job/slot) and then takes ``pause_s``; a
    redelivered run skips the steps done. Returns this attempt's number of new steps."""
    attempt = JobRun.objects.create(job=f"test.attempt.{run}", slot=uuid.uuid4().hex[:12]).pk
    new = 0
    for i in range(steps):
        _, created = JobRun.objects.get_or_create(job=f"test.step.{run}", slot=f"{i:03d}", defaults={"result": attempt})
        if created:
            new += 1
            time.sleep(pause_s)
    JobRun.objects.get_or_create(job=f"test.done.{run}", slot="done", defaults={"result": attempt})
    return new
