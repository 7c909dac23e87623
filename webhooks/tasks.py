"""Webhook delivery jobs. Tasks take ids, load fresh state and are idempotent (a delivered row is never resent)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="webhooks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """One attempt; on failure the next one is scheduled with exponential backoff (and the sweep catches it too)."""
    retry_in = services.delivery_attempt(delivery_id=delivery_id)
    if retry_in is not None:
        deliver.apply_async(args=[delivery_id], countdown=retry_in)


@shared_task(name="webhooks.deliver_due", ignore_result=True)
def deliver_due() -> int:
    """Periodic: attempt every pending delivery whose time has come (lost tasks, worker restarts, receivers down)."""
    ids = services.deliveries_due()
    for delivery_id in ids:
        deliver.delay(delivery_id)
    return len(ids)
