"""Webhook subscriptions (admins only) and their delivery log."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_permissions import AdminOnly
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEvent, WebhookSubscription

from .serializers import (
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionSerializer,
)


class DeliveryFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=DeliveryState.choices)
    event = django_filters.ChoiceFilter(choices=WebhookEvent.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["state", "event"]


class DeliveryQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=DeliveryState.choices, required=False)
    event = serializers.ChoiceField(choices=WebhookEvent.choices, required=False)


class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """Subscriptions to domain events; deliveries are signed (``X-CSMS-Signature``) and retried with backoff."""

    permission_classes = [AdminOnly]
    serializer_class = WebhookSubscriptionSerializer
    queryset = WebhookSubscription.objects.all()
    filterset_fields = ["active"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d+"

    @extend_schema(responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = serializer.save()
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=WebhookDeliverySerializer(many=True), parameters=[DeliveryQuerySerializer])
    @action(detail=True, filter_backends=[])
    def deliveries(self, request: Request, pk: str) -> Response:
        """The subscription's delivery log, newest first, filterable by ``state`` and ``event``."""
        subscription = self.get_object()
        params = DeliveryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        qs = DeliveryFilter(params.validated_data, queryset=subscription.deliveries.all()).qs
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
