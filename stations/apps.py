from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_operator_group(sender: AppConfig, **kwargs: Any) -> None:
    from .services import operator_group_ensure

    operator_group_ensure()


class StationsConfig(AppConfig):
    name = "stations"
    verbose_name = "Charging stations"

    def ready(self) -> None:
        from . import handlers  # noqa: F401 - registers the OCPP handlers

        # After migrate (permissions exist by then): the operators' group that may send commands.
        post_migrate.connect(_ensure_operator_group, sender=self, dispatch_uid="stations-operator-group")
