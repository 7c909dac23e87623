"""REST endpoints of firmware images and rollouts (block L): ``/api/v1/firmware/``, ``/api/v1/firmware-rollouts/``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_permissions import ModelPermissions
from firmware import images, rollouts
from firmware.models import FirmwareImage, FirmwareRollout, RolloutStation


class FirmwareImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = FirmwareImage
        fields = [
            "id",
            "version",
            "size_bytes",
            "md5_hex",
            "sha256_hex",
            "signing_certificate",
            "signature",
            "created_at",
        ]
        read_only_fields = fields


class FirmwareImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    version = serializers.CharField(max_length=50)
    signing_certificate = serializers.CharField(required=False, default="", allow_blank=True, max_length=5500)
    signature = serializers.CharField(required=False, default="", allow_blank=True, max_length=800)


class FirmwareImageViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Firmware images. ``POST`` (multipart: ``file``, ``version``, optional ``signing_certificate`` PEM and base64
    ``signature``) stores one after checking the signature over the file's SHA-256 (400 when it does not verify)."""

    permission_classes = [ModelPermissions]
    serializer_class = FirmwareImageSerializer
    queryset = FirmwareImage.objects.all()
    parser_classes = [MultiPartParser, FormParser]
    lookup_value_regex = r"\d+"

    @extend_schema(
        request={"multipart/form-data": FirmwareImageUploadSerializer}, responses={201: FirmwareImageSerializer}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = FirmwareImageUploadSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            image = images.firmware_image_upload(
                file=data["file"],
                name=data["file"].name,
                version=data["version"],
                signing_certificate=data["signing_certificate"],
                signature=data["signature"],
                user=request.user,
            )
        except images.FirmwareImageError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(FirmwareImageSerializer(image).data, status=status.HTTP_201_CREATED)


class RolloutStationSerializer(serializers.ModelSerializer):
    identity = serializers.CharField(source="station.identity")
    request_id = serializers.IntegerField(source="update.request_id", default=None, allow_null=True)

    class Meta:
        model = RolloutStation
        fields = [
            "identity",
            "state",
            "wave",
            "attempts",
            "detail",
            "request_id",
            "sent_at",
            "state_at",
            "version_confirmed_at",
        ]
        read_only_fields = fields


class RolloutSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    installed = serializers.IntegerField()
    confirmed = serializers.IntegerField(help_text="installed and the next BootNotification reported the version")
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    percent_done = serializers.IntegerField()
    by_state = serializers.DictField(child=serializers.IntegerField())


class FirmwareRolloutSerializer(serializers.ModelSerializer):
    firmware_version = serializers.CharField(source="firmware.version", read_only=True)
    stations = RolloutStationSerializer(many=True, read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta:
        model = FirmwareRollout
        fields = [
            "id",
            "firmware",
            "firmware_version",
            "state",
            "target",
            "wave_size",
            "max_concurrent",
            "current_wave",
            "retrieve_at",
            "install_at",
            "window_start",
            "window_end",
            "window_timezone",
            "halt_failure_share",
            "halt_reason",
            "max_attempts",
            "retry_interval_s",
            "station_retries",
            "station_retry_interval_s",
            "stations",
            "summary",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema(responses=RolloutSummarySerializer)
    def get_summary(self, obj: FirmwareRollout) -> dict[str, Any]:
        return rollouts.rollout_summary(obj)


class FirmwareRolloutCreateSerializer(serializers.Serializer):
    firmware = serializers.PrimaryKeyRelatedField(queryset=FirmwareImage.objects.all())
    stations = serializers.ListField(
        child=serializers.CharField(max_length=48), required=False, help_text="identities (or filter below)"
    )
    vendor = serializers.CharField(required=False, default="", allow_blank=True, max_length=50)
    model = serializers.CharField(required=False, default="", allow_blank=True, max_length=50)
    current_firmware = serializers.CharField(required=False, default="", allow_blank=True, max_length=50)
    wave_size = serializers.IntegerField(min_value=1, default=10)
    max_concurrent = serializers.IntegerField(min_value=1, default=10)
    retrieve_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    install_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    window_start = serializers.TimeField(required=False, allow_null=True, default=None)
    window_end = serializers.TimeField(required=False, allow_null=True, default=None)
    window_timezone = serializers.CharField(required=False, default="UTC", max_length=64)
    halt_failure_share = serializers.FloatField(required=False, min_value=0, max_value=1, allow_null=True, default=None)
    max_attempts = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)
    retry_interval_s = serializers.IntegerField(required=False, min_value=0, allow_null=True, default=None)
    station_retries = serializers.IntegerField(required=False, min_value=0, allow_null=True, default=None)
    station_retry_interval_s = serializers.IntegerField(required=False, min_value=0, allow_null=True, default=None)


class FirmwareRolloutViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Firmware rollouts. ``POST`` starts one: UpdateFirmware to ``stations`` (identities) or to the stations
    matching ``vendor`` / ``model`` / ``current_firmware``, in waves of ``wave_size``, at most ``max_concurrent``
    at once. ``POST .../cancel/`` stops the stations not yet sent."""

    permission_classes = [ModelPermissions]
    serializer_class = FirmwareRolloutSerializer
    parser_classes = [JSONParser]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return FirmwareRollout.objects.select_related("firmware").prefetch_related(
            "stations__station", "stations__update"
        )

    @extend_schema(request=FirmwareRolloutCreateSerializer, responses={201: FirmwareRolloutSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = FirmwareRolloutCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        identities = data.pop("stations", None)
        filters = {k: data.pop(k) for k in ("vendor", "model", "current_firmware")}
        if identities is None and not any(filters.values()):
            raise ValidationError({"stations": "give station identities or a vendor/model/current_firmware filter"})
        stations = list(
            rollouts.rollout_targets(
                identities=identities,
                vendor=filters["vendor"],
                model=filters["model"],
                firmware_version=filters["current_firmware"],
            )
        )
        if identities is not None:
            unknown = sorted(set(identities) - {s.identity for s in stations})
            if unknown and not any(filters.values()):
                raise ValidationError({"stations": f"unknown stations: {', '.join(unknown[:20])}"})
        target = {"identities": identities} if identities is not None else {}
        target |= {k: v for k, v in filters.items() if v}
        try:
            rollout = rollouts.rollout_create(stations=stations, target=target, user=request.user, **data)
        except rollouts.RolloutError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(
            self.get_serializer(self.get_queryset().get(pk=rollout.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={200: FirmwareRolloutSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        rollout = self.get_object()
        if not request.user.has_perm("firmware.change_firmwarerollout") and not request.user.is_staff:
            self.permission_denied(request)
        try:
            rollouts.rollout_cancel(rollout=rollout)
        except rollouts.RolloutError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(self.get_serializer(self.get_queryset().get(pk=rollout.pk)).data)
