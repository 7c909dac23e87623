"""Webhook subscriptions and their delivery log. The secret is write-only (shown once, when created)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from webhooks import services
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    url = serializers.URLField(max_length=500, help_text="http(s) URL receiving signed POSTs")
    events = serializers.MultipleChoiceField(choices=WebhookEvent.choices, allow_empty=False)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=16,
        max_length=128,
        help_text="HMAC key; generated when omitted and then returned once in the creation answer.",
    )

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "active", "description", "secret", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("must be an http:// or https:// URL")
        refusal = services.url_refusal(value)
        if refusal:
            raise serializers.ValidationError(refusal)
        return value

    def to_representation(self, instance: WebhookSubscription) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["events"] = sorted(instance.events)
        return data

    def create(self, validated_data: dict[str, Any]) -> WebhookSubscription:
        validated_data["events"] = sorted(validated_data["events"])
        validated_data.setdefault("secret", services.new_secret())
        return super().create(validated_data)

    def update(self, instance: WebhookSubscription, validated_data: dict[str, Any]) -> WebhookSubscription:
        if "events" in validated_data:
            validated_data["events"] = sorted(validated_data["events"])
        return super().update(instance, validated_data)


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    """The creation answer: the only one that includes the ``secret``."""

    secret = serializers.CharField(read_only=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "subscription",
            "event",
            "payload",
            "state",
            "attempts",
            "response_code",
            "error",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields
