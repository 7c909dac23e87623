from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import WebhookSubscription
        from .services import subscriptions_changed

        post_save.connect(subscriptions_changed, sender=WebhookSubscription, dispatch_uid="webhooks-subs-saved")
        post_delete.connect(subscriptions_changed, sender=WebhookSubscription, dispatch_uid="webhooks-subs-deleted")
