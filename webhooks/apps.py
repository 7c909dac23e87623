from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender: AppConfig, **kwargs: Any) -> None:
    from csms.roles import roles_ensure

    roles_ensure()


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The last installed app: by its post_migrate every app's permissions exist. Creates the API's groups.
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="webhooks-api-roles")
        from django.db.models.signals import post_delete, post_save

        from .models import WebhookSubscription
        from .services import subscriptions_changed

        post_save.connect(subscriptions_changed, sender=WebhookSubscription, dispatch_uid="webhooks-subs-saved")
        post_delete.connect(subscriptions_changed, sender=WebhookSubscription, dispatch_uid="webhooks-subs-deleted")
