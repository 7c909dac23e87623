"""A station's SecurityEventNotification feed (with the CSMS's own records) and its NotifyEvent feed."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_filters import strict_boolean_filter
from csms.api_permissions import ModelPermissions, ReadOrAdmin
from security import rotation, selectors
from security.models import PasswordRotation, SecurityEvent, SecurityEventSource
from stations.models import ChargingStation, StationEvent

from .serializers import PasswordRotationSerializer, SecurityEventSerializer, StationEventSerializer


class SecurityEventFilter(django_filters.FilterSet):
    critical = strict_boolean_filter(field_name="critical")
    source = django_filters.ChoiceFilter(choices=SecurityEventSource.choices)
    type = django_filters.CharFilter(field_name="type")

    class Meta:
        model = SecurityEvent
        fields = ["critical", "source", "type"]


class _StationFeed(generics.ListAPIView):
    permission_classes = [ModelPermissions]
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["timestamp", "id"]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        get_object_or_404(ChargingStation, identity=self.kwargs["identity"])  # unknown station: 404, not []
        return super().list(request, *args, **kwargs)


class StationSecurityEventList(_StationFeed):
    """The station's security events, newest first: reported by the station (``source=station``) or recorded by
    the CSMS (``source=csms``: refused handshakes, one row per address and window with a ``count``)."""

    serializer_class = SecurityEventSerializer
    filterset_class = SecurityEventFilter

    def get_queryset(self) -> QuerySet[SecurityEvent]:
        return selectors.security_events(identity=self.kwargs.get("identity", ""))


class StationEventList(_StationFeed):
    """The station's NotifyEvent events (``EventDataType``), newest first."""

    serializer_class = StationEventSerializer

    def get_queryset(self) -> QuerySet[StationEvent]:
        return selectors.station_events(identity=self.kwargs.get("identity", ""))


class StationPasswordRotations(generics.ListCreateAPIView):
    """GET: the station's password rotations, newest first. POST (admins; no body): rotate its password now
    (security/rotation.py): 201 with the rotation (``state: sent``); 409 when the station has no password or is not
    connected (nothing sent)."""

    permission_classes = [ReadOrAdmin]
    serializer_class = PasswordRotationSerializer
    filter_backends: list[Any] = []

    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation, identity=self.kwargs["identity"])

    def get_queryset(self) -> QuerySet[PasswordRotation]:
        return PasswordRotation.objects.filter(station=self.get_station()).select_related("station")

    @extend_schema(
        request=None, responses={201: PasswordRotationSerializer, 409: OpenApiResponse(description="not sent")}
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        station = self.get_station()
        try:
            started = rotation.password_rotate(station=station, user=request.user)
        except rotation.RotationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(PasswordRotationSerializer(started).data, status=status.HTTP_201_CREATED)
