"""REST endpoints for CSMS->CS commands. Sending goes through ``commands.command_send`` like every other caller."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import django_filters
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.generics import ListCreateAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_filters import strict_boolean_filter
from csms.api_permissions import ReadOrAdmin
from csms.dbpool import db
from stations import commands, services
from stations import selectors as station_selectors
from stations.models import (
    FINAL_COMMAND_STATES,
    BulkCommand,
    ChargingStation,
    Command,
    CommandState,
    RegistrationStatus,
)

from .serializers import (
    BulkCommandCreateSerializer,
    BulkCommandSerializer,
    CommandCreateSerializer,
    CommandSerializer,
    StationSerializer,
    StationUpdateSerializer,
)


class CanSendCommands(permissions.BasePermission):
    """Reading needs a login; sending needs ``stations.add_command`` (the operators' permission)."""

    message = "Sending commands needs the stations.add_command permission."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.has_perm("stations.add_command")


def _sender(request: Request) -> User | None:
    """The user recorded as a command's sender (CanSendCommands lets only logged-in users send)."""
    return request.user if request.user.is_authenticated else None


class CommandFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="station__identity")
    state = django_filters.ChoiceFilter(choices=CommandState.choices)

    class Meta:
        model = Command
        fields = ["station", "action", "state", "bulk"]


def _commands() -> Any:
    return Command.objects.select_related("station", "created_by")


def _raise_invalid(exc: commands.CommandValidationError) -> None:
    raise ValidationError(exc.as_dict()) from exc


class StationCommandsView(ListCreateAPIView):
    """``GET``: the station's commands. ``POST {"action", "payload", "wait"}``: send one (see ``station_commands``)."""

    permission_classes = [CanSendCommands]
    serializer_class = CommandSerializer
    filterset_class = CommandFilter

    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation, identity=self.kwargs["identity"])

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular introspection: no URL kwargs
            return Command.objects.none()
        return _commands().filter(station=self.get_station())

    @extend_schema(request=CommandCreateSerializer, responses={200: CommandSerializer, 202: CommandSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        station = self.get_station()
        params = CommandCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            command = commands.command_send(
                station=station,
                action=params.validated_data["action"],
                payload=params.validated_data["payload"],
                user=_sender(request),
            )
        except commands.CommandValidationError as exc:
            _raise_invalid(exc)
        response = Response(CommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)
        # Read by the async wrapper, which does the waiting without holding a thread.
        response.csms_wait = (command.pk, params.validated_data["wait"])  # type: ignore[attr-defined]
        return response


def _read(command_id: int, then: Callable[[Command], Any], deadline: float) -> tuple[bool, Any]:
    """(True, ``then`` of the command's row) once it is over or the time is up, in the same thread call as the
    read; else (False, None)."""
    command = _commands().get(pk=command_id)
    if command.is_final or time.monotonic() >= deadline:
        return True, then(command)
    return False, None


_unsubscribing: set[asyncio.Task[None]] = set()


async def command_wait(command_id: int, timeout_s: float, then: Callable[[Command], Any] = lambda c: c) -> Any:
    """Wait (without a thread) until the command is over or the time is up; return ``then`` of its current row
    (the row itself by default), read in the same database-thread call as the row."""
    deadline = time.monotonic() + timeout_s
    layer = get_channel_layer()
    assert layer is not None  # settings always configure CHANNEL_LAYERS
    channel = await layer.new_channel()
    group = commands.command_group(command_id)
    # Subscribe before reading the state: an outcome published in between is not missed.
    await layer.group_add(group, channel)
    try:
        while True:
            done, result = await db(_read)(command_id, then, deadline)
            if done:
                return result
            try:
                await asyncio.wait_for(layer.receive(channel), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
    finally:
        # Off the caller's path: the answer does not wait for this round trip (the group expires anyway).
        task = asyncio.get_running_loop().create_task(layer.group_discard(group, channel))
        _unsubscribing.add(task)
        task.add_done_callback(_unsubscribing.discard)


_station_commands_sync = StationCommandsView.as_view()


@csrf_exempt  # DRF's SessionAuthentication enforces CSRF itself; token clients have none.
async def station_commands(request: HttpRequest, identity: str) -> HttpResponse:
    """Async edge of ``StationCommandsView``: the sync view validates and sends in a worker thread; a ``wait`` is
    then spent here, on the event loop, so that waiting callers never hold one of Django's threads."""
    response = await db(_station_commands_sync)(request, identity=identity)
    pending = getattr(response, "csms_wait", None)
    if pending is None:
        return response
    command_id, wait = pending
    if wait > 0 and response.data["state"] not in FINAL_COMMAND_STATES:
        response.data = await command_wait(command_id, wait, then=lambda c: CommandSerializer(c).data)
    if wait > 0 and response.data["state"] in FINAL_COMMAND_STATES:
        response.status_code = status.HTTP_200_OK  # the outcome is in; 202 means "still under way"
    return response


# drf-spectacular documents the wrapper as the DRF view it wraps.
station_commands.cls = StationCommandsView  # type: ignore[attr-defined]
station_commands.initkwargs = {}  # type: ignore[attr-defined]


class CommandViewSet(viewsets.ReadOnlyModelViewSet):
    """Every command (audit trail), filterable by ``station`` (identity), ``action``, ``state``, ``bulk``."""

    serializer_class = CommandSerializer
    filterset_class = CommandFilter

    def get_queryset(self) -> Any:
        return _commands()


class BulkCommandViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The same command to many stations; ``summary`` and ``results`` show progress while it runs."""

    permission_classes = [CanSendCommands]
    serializer_class = BulkCommandSerializer
    queryset = BulkCommand.objects.select_related("created_by")

    @extend_schema(request=BulkCommandCreateSerializer, responses={202: BulkCommandSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = BulkCommandCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        target: dict[str, Any] = {
            k: data[k] for k in ("identities", "online", "model") if data.get(k) not in (None, "")
        }
        stations = commands.bulk_targets(
            identities=data.get("identities"), online=data.get("online"), model=data.get("model", "")
        )
        if data.get("identities") is not None:
            known = set(
                ChargingStation.objects.filter(identity__in=data["identities"]).values_list("identity", flat=True)
            )
            unknown = sorted(set(data["identities"]) - known)
            if unknown:
                raise ValidationError({"identities": [f"unknown stations: {', '.join(unknown)}"]})
        try:
            bulk = commands.bulk_command_send(
                action=data["action"], payload=data["payload"], stations=stations, target=target, user=_sender(request)
            )
        except commands.CommandValidationError as exc:
            _raise_invalid(exc)
        return Response(BulkCommandSerializer(bulk).data, status=status.HTTP_202_ACCEPTED)


# --- Stations -------------------------------------------------------------------------------------------------


class StationFilter(django_filters.FilterSet):
    is_online = strict_boolean_filter()
    model = django_filters.CharFilter()
    vendor = django_filters.CharFilter(field_name="vendor_name")
    registration_status = django_filters.ChoiceFilter(choices=RegistrationStatus.choices)
    search = django_filters.CharFilter(method="filter_search", help_text="identity, model or vendor contains")

    class Meta:
        model = ChargingStation
        fields = ["is_online", "model", "vendor", "registration_status", "search"]

    def filter_search(self, queryset: Any, name: str, value: str) -> Any:
        return queryset.filter(
            Q(identity__icontains=value) | Q(model__icontains=value) | Q(vendor_name__icontains=value)
        )


class StationViewSet(viewsets.ModelViewSet):
    """Stations (lookup by ``identity``). Reading needs ``stations.view_chargingstation``; registering, changing
    and deleting are for admins. A station with commands or transactions cannot be deleted (409)."""

    permission_classes = [ReadOrAdmin]
    lookup_field = "identity"
    lookup_value_regex = "[^/]+"
    filterset_class = StationFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["identity", "last_seen_at", "created_at", "last_boot_at"]
    ordering = ["identity"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        return station_selectors.station_list()

    def get_serializer_class(self) -> Any:
        return StationUpdateSerializer if self.action == "partial_update" else StationSerializer

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="the station has an audit trail")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        station = self.get_object()
        try:
            services.station_delete(station=station)
        except services.StationInUse as exc:
            return Response({"detail": f"cannot delete {station.identity}: {exc}"}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)
