from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CsmsConfig(AppConfig):
    name = "csms"
    verbose_name = "CSMS core"

    def ready(self) -> None:
        from .roles import roles_ensure_after_migrate

        post_migrate.connect(roles_ensure_after_migrate, dispatch_uid="csms-roles")

        from .metrics import celery_signals_connect

        celery_signals_connect()
