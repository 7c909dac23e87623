"""REST endpoints of the device model and report jobs. Queries from ``selectors``, changes through ``services``."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_permissions import is_admin
from devicemodel import monitoring, selectors, services
from devicemodel.models import DeviceVariable, ReportJob, ReportKind, VariableMonitor
from stations import commands
from stations.models import ChargingStation

from .serializers import DeviceVariableSerializer, MonitorSerializer, ReportJobSerializer, ReportRequestSerializer


class CanReadStationsOrSendCommands(permissions.BasePermission):
    """Reading needs ``stations.view_chargingstation`` (billing, operator); requesting a report sends a command:
    ``stations.add_command`` (operator)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_admin(user):
            return True
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("stations.view_chargingstation")
        return user.has_perm("stations.add_command")


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "") in ("1", "true", "True")


class StationScoped:
    kwargs: dict[str, Any]

    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation, identity=self.kwargs["identity"])


class DeviceModelPagination(PageNumberPagination):
    """The usual page, plus the station's ``reboot_required`` flag (set by the view)."""

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["reboot_required"] = {
            "type": "boolean",
            "description": "a SetVariables answer said RebootRequired and the station has not booted since",
        }
        return paginated


@extend_schema(
    parameters=[
        OpenApiParameter("search", OpenApiTypes.STR, description="component or variable name contains"),
        OpenApiParameter("mutable", OpenApiTypes.BOOL, description="only variables with a writable attribute"),
        OpenApiParameter("monitoring", OpenApiTypes.BOOL, description="only variables that support monitoring"),
        OpenApiParameter("include_gone", OpenApiTypes.BOOL, description="also those a later report no longer listed"),
    ]
)
class DeviceModelView(StationScoped, generics.ListAPIView):
    """The station's stored device model, one row per component-variable; ``reboot_required`` beside the page."""

    permission_classes = [CanReadStationsOrSendCommands]
    serializer_class = DeviceVariableSerializer
    pagination_class = DeviceModelPagination
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return DeviceVariable.objects.none()
        request = self.request
        return selectors.device_variables(
            station_id=self.get_station().pk,
            search=request.query_params.get("search", "").strip(),
            mutable=_flag(request, "mutable"),
            monitoring=_flag(request, "monitoring"),
            include_gone=_flag(request, "include_gone"),
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        response.data["reboot_required"] = selectors.reboot_required(station_id=self.get_station().pk)
        return response


class ReportJobsView(StationScoped, generics.ListCreateAPIView):
    """``GET``: the station's report jobs with their state. ``POST {"kind", "component_criteria",
    "component_variable"}``: request a report (GetBaseReport / GetReport); ``{"kind": "Monitoring",
    "monitoring_criteria", "component_variable"}``: GetMonitoringReport."""

    permission_classes = [CanReadStationsOrSendCommands]
    serializer_class = ReportJobSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ReportJob.objects.none()
        return selectors.report_jobs(station_id=self.get_station().pk)

    @extend_schema(request=ReportRequestSerializer, responses={201: ReportJobSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        station = self.get_station()
        params = ReportRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            if data["kind"] == ReportKind.MONITORING:
                job = monitoring.monitoring_report_request(
                    station=station,
                    monitoring_criteria=data.get("monitoring_criteria"),
                    component_variable=data.get("component_variable"),
                    user=request.user,
                )
            else:
                job = services.report_request(
                    station=station,
                    kind=data["kind"],
                    component_criteria=data.get("component_criteria"),
                    component_variable=data.get("component_variable"),
                    user=request.user,
                )
        except commands.CommandValidationError as exc:
            raise ValidationError(exc.as_dict()) from exc
        except (services.ReportRequestError, monitoring.MonitorRequestError) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        shown = selectors.report_job(station_id=station.pk, pk=job.pk) or job  # with its related rows
        return Response(ReportJobSerializer(shown).data, status=status.HTTP_201_CREATED)


class ReportJobView(StationScoped, generics.RetrieveAPIView):
    permission_classes = [CanReadStationsOrSendCommands]
    serializer_class = ReportJobSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ReportJob.objects.none()
        return selectors.report_jobs(station_id=self.get_station().pk)


@extend_schema(
    parameters=[OpenApiParameter("include_gone", OpenApiTypes.BOOL, description="also cleared or no longer reported")]
)
class MonitorsView(StationScoped, generics.ListAPIView):
    """The station's variable monitors (NotifyMonitoringReport, accepted SetVariableMonitoring), by variable."""

    permission_classes = [CanReadStationsOrSendCommands]
    serializer_class = MonitorSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return VariableMonitor.objects.none()
        return selectors.monitors(station_id=self.get_station().pk, include_gone=_flag(self.request, "include_gone"))
