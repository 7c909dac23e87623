"""Smart charging jobs (Celery): the site recompute (debounced by generation, per-site lock in the database), its
raise phase, and the periodic sweep. Ids in, idempotent."""

from __future__ import annotations

from celery import shared_task

from . import sites


@shared_task(name="smartcharging.site_recompute", ignore_result=True, acks_late=True)
def site_recompute_task(site_id: int, generation: int | None = None) -> int | None:
    """Recompute one site (nothing when a newer request superseded ``generation``). Returns the round id."""
    round_ = sites.site_recompute(site_id=site_id, generation=generation)
    return round_.pk if round_ is not None else None


@shared_task(name="smartcharging.site_raise", ignore_result=True, acks_late=True)
def site_raise_task(round_id: int) -> int:
    """Send a round's raises once its lowers were accepted. Returns how many were sent."""
    return sites.site_raise(round_id=round_id)


@shared_task(name="smartcharging.sites_sweep", ignore_result=True)
def sites_sweep_task() -> int:
    return sites.sites_sweep()
