"""Webhook delivery jobs. Tasks take ids, load fresh state and are idempotent (a delivered row is never resent)."""

from __future__ import annotations

from celery import shared_task

from csms import jobs

from . import services


@shared_task(name="webhooks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """One attempt; on failure the next one is due after exponential backoff (``next_attempt_at``): enqueued with a
    countdown when that is short (``csms.jobs.later``), else sent by the beat sweep ``deliver_due`` when due."""
    retry_in = services.delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        jobs.later(deliver, args=[delivery_id], delay_s=retry_in)


@shared_task(name="webhooks.deliver_due", ignore_result=True)
def deliver_due() -> int:
    """Periodic: attempt every pending delivery whose time has come (lost tasks, worker restarts, receivers down)."""
    ids = services.deliveries_due()
    for delivery_id in ids:
        deliver.delay(delivery_id)
    return len(ids)
