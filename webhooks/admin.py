from django.contrib import admin

from .models import WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "url", "active", "events", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "description"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "subscription", "state", "attempts", "response_code", "created_at", "delivered_at"]
    list_filter = ["state", "event"]
    list_select_related = ["subscription"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
