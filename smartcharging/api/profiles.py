"""REST endpoints of a station's charging profiles (block K): the CSMS's record (list), install
(SetChargingProfile), clear (ClearChargingProfile), ask the station (GetChargingProfiles), and the composite
schedule: the CSMS's own computation, or the station's answer to GetCompositeSchedule (``ask_station=1``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from csms.api_permissions import is_admin
from csms.dbpool import db
from stations import commands
from stations.api.serializers import CommandSerializer
from stations.api.station_reports import StationReportRequestsView, StationScoped, command_invalid
from stations.api.views import command_wait
from stations.models import Command, CommandState

from .. import profiles, services
from ..models import (
    ChargingProfile,
    ChargingProfilePurpose,
    ChargingProfileReport,
    ChargingProfileState,
    ChargingRateUnit,
    StationCompositeSchedule,
)


class CanReadOrSendProfiles(permissions.BasePermission):
    """Reading needs ``smartcharging.view_chargingprofile`` (billing, operator); installing, clearing and asking
    the station send commands: ``stations.add_command`` (operator)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_admin(user):
            return True
        if request.method in permissions.SAFE_METHODS and not request.query_params.get("ask_station"):
            return user.has_perm("smartcharging.view_chargingprofile")
        return user.has_perm("stations.add_command")


class ChargingProfileSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    charging_profile = serializers.SerializerMethodField(help_text="The profile as OCPP ChargingProfileType.")

    class Meta:
        model = ChargingProfile
        fields = [
            "id",
            "station",
            "evse_id",
            "profile_id",
            "stack_level",
            "purpose",
            "kind",
            "recurrency_kind",
            "valid_from",
            "valid_to",
            "transaction_id",
            "source",
            "state",
            "station_status",
            "status_info",
            "charging_limit_source",
            "in_remote_start",
            "command",
            "clear_command",
            "report_request_id",
            "cleared_reason",
            "created_at",
            "updated_at",
            "installed_at",
            "reported_at",
            "cleared_at",
            "charging_profile",
        ]
        read_only_fields = fields

    def get_charging_profile(self, obj: ChargingProfile) -> dict[str, Any]:
        return profiles.profile_payload(obj)


class ProfileInstallSerializer(serializers.Serializer):
    evse_id = serializers.IntegerField(min_value=0, max_value=2**31 - 1)
    charging_profile = serializers.DictField(
        help_text="An OCPP ChargingProfileType (camelCase); `id` may be left out: the CSMS allocates it."
    )


class ChargingProfileReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChargingProfileReport
        fields = ["id", "request_id", "state", "evse_id", "criteria", "parts_received", "profiles_received",
                  "command", "created_at", "completed_at"]  # fmt: skip
        read_only_fields = fields


class ProfileReportRequestSerializer(serializers.Serializer):
    evse_id = serializers.IntegerField(min_value=0, required=False, default=None, allow_null=True)
    purpose = serializers.ChoiceField(choices=ChargingProfilePurpose.choices, required=False, default="")
    stack_level = serializers.IntegerField(min_value=0, required=False, default=None, allow_null=True)
    profile_ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    limit_sources = serializers.ListField(child=serializers.CharField(max_length=8), required=False, default=list)


def _int_param(
    request: Request, name: str, *, default: int | None = None, minimum: int = 0, maximum: int = 2**31 - 1
) -> int | None:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"{name} must be an integer"}) from None
    if value < minimum:
        raise ValidationError({name: f"{name} must be at least {minimum}"})
    if value > maximum:
        raise ValidationError({name: f"{name} must be at most {maximum}"})
    return value


class ChargingProfilesView(StationScoped, generics.ListCreateAPIView):
    """``GET``: the CSMS's record of the station's profiles (default: installed and pending; ``?state=`` one state
    or ``all``; ``?evse_id=``, ``?purpose=``). ``POST {"evse_id", "charging_profile"}``: install it
    (SetChargingProfile through the command pipeline; validated beyond the schema: 400 with ``violations``).
    ``DELETE`` (``?profile_id=`` or criteria ``?evse_id=&purpose=&stack_level=``; none: every profile): send
    ClearChargingProfile, 202 with the command; the record clears once the station accepts."""

    permission_classes = [CanReadOrSendProfiles]
    serializer_class = ChargingProfileSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ChargingProfile.objects.none()
        qs = ChargingProfile.objects.filter(station=self.get_station()).select_related("station")
        state = self.request.query_params.get("state", "")
        if state in ChargingProfileState.values:
            qs = qs.filter(state=state)
        elif state != "all":
            qs = qs.filter(state__in=profiles.LIVE)
        evse_id = _int_param(self.request, "evse_id")
        if evse_id is not None:
            qs = qs.filter(evse_id=evse_id)
        purpose = self.request.query_params.get("purpose", "")
        if purpose:
            qs = qs.filter(purpose=purpose)
        return qs.prefetch_related("schedules__periods").order_by("evse_id", "purpose", "-stack_level", "profile_id")

    @extend_schema(request=ProfileInstallSerializer, responses={201: ChargingProfileSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = ProfileInstallSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            row = profiles.profile_set(
                station=self.get_station(),
                evse_id=params.validated_data["evse_id"],
                profile=params.validated_data["charging_profile"],
                user=request.user,
            )
        except commands.CommandValidationError as exc:
            command_invalid(exc)
        return Response(ChargingProfileSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("profile_id", int),
            OpenApiParameter("evse_id", int),
            OpenApiParameter("purpose", str, enum=ChargingProfilePurpose.values),
            OpenApiParameter("stack_level", int),
        ],
        request=None,
        responses={202: CommandSerializer},
    )
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        purpose = request.query_params.get("purpose", "")
        if purpose and purpose not in ChargingProfilePurpose.values:
            raise ValidationError({"purpose": f"{purpose!r} is not a charging profile purpose"})
        try:
            command = profiles.profiles_clear(
                station=self.get_station(),
                profile_id=_int_param(request, "profile_id", minimum=-(2**31)),
                evse_id=_int_param(request, "evse_id"),
                purpose=purpose,
                stack_level=_int_param(request, "stack_level"),
                user=request.user,
            )
        except commands.CommandValidationError as exc:
            command_invalid(exc)
        return Response(CommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    post=extend_schema(request=ProfileReportRequestSerializer, responses={201: ChargingProfileReportSerializer})
)
class ChargingProfileReportsView(StationReportRequestsView):
    """``GET``: the station's GetChargingProfiles requests. ``POST {"evse_id", "purpose", "stack_level",
    "profile_ids", "limit_sources"}``: send one (201); its ReportChargingProfiles reconcile the record."""

    permission_classes = [CanReadOrSendProfiles]
    serializer_class = ChargingProfileReportSerializer
    parameters_serializer_class = ProfileReportRequestSerializer
    report_model = ChargingProfileReport
    send = profiles.profiles_report_request


class CompositePeriodSerializer(serializers.Serializer):
    start_period_s = serializers.IntegerField()
    limit = serializers.FloatField(allow_null=True, help_text="null: no profile limits charging")
    number_phases = serializers.IntegerField(allow_null=True)


class CompositeScheduleSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["csms", "station"])  # type: ignore[assignment]
    evse_id = serializers.IntegerField()
    duration_s = serializers.IntegerField()
    schedule_start = serializers.CharField(allow_null=True)
    charging_rate_unit = serializers.CharField()
    periods = CompositePeriodSerializer(many=True)
    status = serializers.CharField(required=False, help_text="ask_station: the station's answer status")
    command = serializers.IntegerField(required=False, help_text="ask_station: the GetCompositeSchedule command")
    state = serializers.CharField(required=False, help_text="ask_station: the command's state")


class CompositeScheduleView(StationScoped, APIView):
    """``GET ?evse_id=&duration_s=&rate_unit=``: the CSMS's own composite schedule of the EVSE from its record
    (installed profiles, the active transaction's TxProfile, external limits). ``&ask_station=1``: send
    GetCompositeSchedule and answer the station's composite (200; 202 with the command's state while the station
    has not answered within ``wait`` seconds, default 30)."""

    permission_classes = [CanReadOrSendProfiles]

    @extend_schema(
        parameters=[
            OpenApiParameter("evse_id", int, default=1),
            OpenApiParameter("duration_s", int, default=86400),
            OpenApiParameter("rate_unit", str, enum=ChargingRateUnit.values, default="A"),
            OpenApiParameter("ask_station", bool),
            OpenApiParameter("wait", int, default=30),
        ],
        responses={200: CompositeScheduleSerializer, 202: CompositeScheduleSerializer},
    )
    def get(self, request: Request, identity: str) -> Response:
        station = self.get_station()
        evse_id = _int_param(request, "evse_id", default=1)
        duration_s = _int_param(request, "duration_s", default=86400, minimum=1)
        assert evse_id is not None and duration_s is not None
        if duration_s > 7 * 86400:
            raise ValidationError({"duration_s": "duration_s is at most 604800 (7 days)"})
        rate_unit = request.query_params.get("rate_unit", "A")
        if rate_unit not in ChargingRateUnit.values:
            raise ValidationError({"rate_unit": "rate_unit is A or W"})
        if request.query_params.get("ask_station") in ("1", "true", "yes"):
            wait = _int_param(request, "wait", default=30)
            assert wait is not None
            try:
                command = services.composite_request(
                    station=station, evse_id=evse_id, duration_s=duration_s, rate_unit=rate_unit, user=request.user
                )
            except commands.CommandValidationError as exc:
                command_invalid(exc)
            response = Response(station_answer_data(command.pk), status=status.HTTP_202_ACCEPTED)
            response.csms_wait = (command.pk, min(wait, settings.CSMS_COMMAND_MAX_WAIT_S))  # type: ignore[attr-defined]
            return response
        result = services.composite_compute(
            station=station, evse_id=evse_id, duration_s=duration_s, rate_unit=rate_unit
        )
        return Response({"source": "csms", **services.composite_as_dict(result, evse_id=evse_id)})


def station_answer_data(command_id: int) -> dict[str, Any]:
    """The ask_station answer: the station's stored composite, or the command's state while there is none."""
    answer = StationCompositeSchedule.objects.filter(command_id=command_id).first()
    command = Command.objects.get(pk=command_id)
    base = {"source": "station", "command": command_id, "state": command.state}
    if answer is None:
        return base | {"evse_id": command.request["evseId"], "duration_s": command.request["duration"],
                       "schedule_start": None, "charging_rate_unit": command.request.get("chargingRateUnit", ""),
                       "periods": []}  # fmt: skip
    return base | services.station_composite_as_dict(answer)


_composite_sync = CompositeScheduleView.as_view()


@csrf_exempt
async def composite_schedule_view(request: HttpRequest, identity: str) -> HttpResponse:
    """Async edge of ``CompositeScheduleView``: an ``ask_station`` wait is spent on the event loop."""
    response = await db(_composite_sync)(request, identity=identity)
    pending = getattr(response, "csms_wait", None)
    if pending is None:
        return response
    command_id, wait = pending
    command = await command_wait(command_id, wait)
    response.data = await db(station_answer_data)(command_id)
    if command.state in (CommandState.ANSWERED, CommandState.FAILED, CommandState.TIMED_OUT, CommandState.OFFLINE):
        response.status_code = status.HTTP_200_OK
    return response


composite_schedule_view.cls = CompositeScheduleView  # type: ignore[attr-defined]
composite_schedule_view.initkwargs = {}  # type: ignore[attr-defined]
