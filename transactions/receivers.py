"""Keep local lists in sync when tokens change, however they change (admin, API, shell).

Model signals stay inside this app: they only enqueue the sync job, after the change is committed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from .models import IdToken, LocalAuthList


def _enqueue(station_ids: list[int]) -> None:
    from .tasks import local_list_sync_task

    for station_id in station_ids:
        transaction.on_commit(partial(local_list_sync_task.delay, station_id))


@receiver(post_save, sender=IdToken)
def id_token_saved(sender: type[IdToken], instance: IdToken, created: bool, **kwargs: Any) -> None:
    if created:
        return  # a new token is on no station's list yet
    _enqueue(list(LocalAuthList.objects.filter(tokens=instance).values_list("station_id", flat=True)))


@receiver(m2m_changed, sender=LocalAuthList.tokens.through)
def local_list_tokens_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if reverse:  # token.local_lists.add(...): pk_set holds LocalAuthList ids
        ids = list(LocalAuthList.objects.filter(pk__in=pk_set or []).values_list("station_id", flat=True))
    else:
        ids = [instance.station_id]
    _enqueue(ids)
