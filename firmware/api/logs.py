"""REST endpoints of log requests (block N): list, read, send GetLog, download the uploaded file."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import FileResponse
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_permissions import ModelPermissions, is_admin
from firmware import logs
from firmware.models import LogRequest, LogRequestState, LogType
from stations.commands import CommandValidationError
from stations.models import ChargingStation
from transactions.api.views import _IgnoreAccept as IgnoreAccept

DOWNLOAD_PERMISSION = "firmware.download_logrequest"


def can_download(user: Any) -> bool:
    return is_admin(user) or bool(user and user.has_perm(DOWNLOAD_PERMISSION))


class LogStatusEntrySerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    statusInfo = serializers.DictField(required=False)  # noqa: N815 - as OCPP spells it


class LogRequestSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.get_username", read_only=True, default=None, allow_null=True
    )
    statuses = LogStatusEntrySerializer(many=True, read_only=True)
    file_name = serializers.SerializerMethodField()
    file_size_bytes = serializers.SerializerMethodField()
    uploaded_at = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(help_text="null until a file was uploaded")

    class Meta:
        model = LogRequest
        fields = [
            "id",
            "station",
            "request_id",
            "log_type",
            "oldest_timestamp",
            "latest_timestamp",
            "retries",
            "retry_interval_s",
            "protocol",
            "state",
            "station_status",
            "station_filename",
            "status_info",
            "last_status",
            "statuses",
            "file_name",
            "file_size_bytes",
            "uploaded_at",
            "download_url",
            "command",
            "requested_by",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields

    def _uploaded(self, obj: LogRequest) -> bool:
        return obj.slot is not None and obj.slot.used_at is not None and bool(obj.slot.file)

    def get_file_name(self, obj: LogRequest) -> str | None:
        return obj.slot.filename if self._uploaded(obj) and obj.slot else None

    def get_file_size_bytes(self, obj: LogRequest) -> int | None:
        return obj.slot.size_bytes if self._uploaded(obj) and obj.slot else None

    def get_uploaded_at(self, obj: LogRequest) -> str | None:
        return obj.slot.used_at.isoformat() if self._uploaded(obj) and obj.slot and obj.slot.used_at else None

    def get_download_url(self, obj: LogRequest) -> str | None:
        return reverse("log-request-download", args=[obj.pk]) if self._uploaded(obj) else None


class LogRequestCreateSerializer(serializers.Serializer):
    station = serializers.SlugRelatedField(slug_field="identity", queryset=ChargingStation.objects.all())
    log_type = serializers.ChoiceField(choices=LogType.choices, default=LogType.DIAGNOSTICS)
    oldest_timestamp = serializers.DateTimeField(required=False, allow_null=True, default=None)
    latest_timestamp = serializers.DateTimeField(required=False, allow_null=True, default=None)
    retries = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0, max_value=100)
    retry_interval_s = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=86400
    )


class LogRequestFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="station__identity", help_text="station identity")
    state = django_filters.ChoiceFilter(choices=LogRequestState.choices)

    class Meta:
        model = LogRequest
        fields = ["station", "state", "log_type"]


class LogRequestViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """GetLog jobs. ``POST`` sends GetLog to the station (201, ``requested``; the CSMS gives it its own upload
    URL); the answer and the station's LogStatusNotifications move it on (``accepted``, ``uploading``,
    ``uploaded``, ``upload_failed``, ``rejected``, ``cancelled``, ``timed_out``, ``failed``). Reading needs
    ``firmware.view_logrequest`` (billing, operators), POST ``add_logrequest`` (operators), the file
    (``download_url``) ``download_logrequest`` as well (operators, not billing)."""

    permission_classes = [ModelPermissions]
    serializer_class = LogRequestSerializer
    filterset_class = LogRequestFilter
    filter_backends = [DjangoFilterBackend]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return LogRequest.objects.select_related("station", "requested_by", "slot")

    @extend_schema(request=LogRequestCreateSerializer, responses={201: LogRequestSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = LogRequestCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            created = logs.log_request_send(
                station=data["station"],
                log_type=data["log_type"],
                oldest_timestamp=data["oldest_timestamp"],
                latest_timestamp=data["latest_timestamp"],
                retries=data["retries"],
                retry_interval_s=data["retry_interval_s"],
                user=request.user,
            )
        except CommandValidationError as exc:
            raise ValidationError(exc.as_dict()) from exc
        shown = self.get_queryset().get(pk=created.pk)
        return Response(LogRequestSerializer(shown).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="the uploaded log file")})
    @action(detail=True, url_path="download", url_name="download", content_negotiation_class=IgnoreAccept)
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        """The file the station uploaded (needs ``firmware.download_logrequest`` too); 404 before any upload."""
        obj = self.get_object()
        if not can_download(request.user):
            raise PermissionDenied("downloading log files needs the firmware.download_logrequest permission")
        return log_file_response(obj)


def log_file_response(obj: LogRequest) -> FileResponse:
    slot = obj.slot
    if slot is None or slot.used_at is None or not slot.file:
        raise NotFound("no file was uploaded for this log request")
    return FileResponse(
        slot.file.open("rb"),
        as_attachment=True,
        filename=f"{obj.station.identity}-{obj.log_type}-{obj.request_id}-{slot.filename}",
        content_type="application/octet-stream",
    )
