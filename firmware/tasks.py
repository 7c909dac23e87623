"""Firmware jobs (Celery): the rollout state machine's steps. Take ids, idempotent, acks late (settings)."""

from __future__ import annotations

from celery import shared_task

from . import rollouts


@shared_task(name="firmware.rollout_advance", ignore_result=True)
def rollout_advance_task(rollout_id: int | None = None) -> int:
    """Advance one rollout (a nudge after an event) or, from beat, every running one. Returns how many."""
    if rollout_id is None:
        return rollouts.rollouts_advance()
    return int(rollouts.rollout_advance(rollout_id=rollout_id) is not None)
