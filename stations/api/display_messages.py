"""REST endpoints of a station's display messages (block O): list, set (SetDisplayMessage), clear
(ClearDisplayMessage) and ask the station for its messages (GetDisplayMessages)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from csms.api_permissions import is_admin
from stations import commands, display_messages
from stations.models import (
    DisplayMessage,
    DisplayMessageReport,
    DisplayMessageSource,
    MessageFormat,
    MessagePriority,
    MessageState,
)

from .serializers import CommandSerializer
from .station_reports import StationReportRequestsView, StationScoped, command_invalid


class CanReadOrSendDisplayMessages(permissions.BasePermission):
    """Reading needs ``stations.view_displaymessage`` (billing, operator); setting, clearing and asking the
    station send commands: ``stations.add_command`` (operator)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_admin(user):
            return True
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("stations.view_displaymessage")
        return user.has_perm("stations.add_command")


class DisplayComponentSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    instance = serializers.CharField(max_length=50, required=False)
    evse_id = serializers.IntegerField(min_value=0, required=False)
    connector_id = serializers.IntegerField(min_value=0, required=False)


class DisplayMessageSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    state = serializers.CharField(read_only=True, help_text="Charging, Faulted, Idle, Unavailable; empty: any")

    class Meta:
        model = DisplayMessage
        fields = [
            "id",
            "station",
            "message_id",
            "source",
            "status",
            "station_status",
            "status_info",
            "priority",
            "state",
            "start_at",
            "end_at",
            "transaction_id",
            "format",
            "language",
            "content",
            "display",
            "command",
            "clear_command",
            "request_id",
            "created_at",
            "updated_at",
            "cleared_at",
        ]
        read_only_fields = fields


class DisplayMessageSetSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=512)
    priority = serializers.ChoiceField(choices=MessagePriority.choices, default=MessagePriority.NORMAL_CYCLE)
    format = serializers.ChoiceField(choices=MessageFormat.choices, default=MessageFormat.UTF8)
    language = serializers.CharField(max_length=8, required=False, default="")
    state = serializers.ChoiceField(choices=MessageState.choices, required=False, default="")
    start_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    transaction_id = serializers.CharField(max_length=36, required=False, default="")
    display = DisplayComponentSerializer(required=False, allow_null=True, default=None)
    replaces = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="The message_id of a message the CSMS set on this station: the station replaces it (O06).",
    )


class DisplayMessageReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = DisplayMessageReport
        fields = ["id", "request_id", "state", "parts_received", "messages_received", "command", "created_at"]
        read_only_fields = fields


class DisplayMessageReportRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    priority = serializers.ChoiceField(choices=MessagePriority.choices, required=False, default="")
    state = serializers.ChoiceField(choices=MessageState.choices, required=False, default="")


def _component(display: dict[str, Any] | None) -> dict[str, Any] | None:
    if not display:
        return None
    component: dict[str, Any] = {"name": display["name"]}
    if display.get("instance"):
        component["instance"] = display["instance"]
    if display.get("evse_id") is not None:
        component["evse"] = {"id": display["evse_id"]}
        if display.get("connector_id") is not None:
            component["evse"]["connectorId"] = display["connector_id"]
    return component


class DisplayMessagesView(StationScoped, generics.ListCreateAPIView):
    """``GET``: the station's display messages, set by the CSMS (``source`` csms) and reported by the station
    (``reported``); filter ``source``. ``POST``: send SetDisplayMessage (the CSMS allocates ``message_id``)."""

    permission_classes = [CanReadOrSendDisplayMessages]
    serializer_class = DisplayMessageSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return DisplayMessage.objects.none()
        qs = DisplayMessage.objects.filter(station=self.get_station()).select_related("station")
        source = self.request.query_params.get("source", "")
        if source in DisplayMessageSource.values:
            qs = qs.filter(source=source)
        return qs.order_by("source", "-message_id")

    @extend_schema(request=DisplayMessageSetSerializer, responses={201: DisplayMessageSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        station = self.get_station()
        params = DisplayMessageSetSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        data["display"] = _component(data.get("display"))
        if data["replaces"] and not display_messages.csms_message_exists(station=station, message_id=data["replaces"]):
            raise ValidationError({"replaces": [f"no message {data['replaces']} was set on {station.identity}"]})
        try:
            message = display_messages.display_message_set(station=station, user=request.user, **data)
        except commands.CommandValidationError as exc:
            command_invalid(exc)
        return Response(DisplayMessageSerializer(message).data, status=status.HTTP_201_CREATED)


class DisplayMessageClearView(StationScoped, APIView):
    """``DELETE /{message_id}/``: send ClearDisplayMessage; the message is ``cleared`` once the station accepts.
    202 with the command."""

    permission_classes = [CanReadOrSendDisplayMessages]

    @extend_schema(request=None, responses={202: CommandSerializer})
    def delete(self, request: Request, identity: str, message_id: int) -> Response:
        station = self.get_station()
        try:
            command = display_messages.display_message_clear(station=station, message_id=message_id, user=request.user)
        except commands.CommandValidationError as exc:
            command_invalid(exc)
        return Response(CommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    post=extend_schema(request=DisplayMessageReportRequestSerializer, responses={201: DisplayMessageReportSerializer})
)
class DisplayMessageReportsView(StationReportRequestsView):
    """``GET``: the station's GetDisplayMessages requests. ``POST {"ids", "priority", "state"}``: send one; the
    station's NotifyDisplayMessages replace its reported messages."""

    permission_classes = [CanReadOrSendDisplayMessages]
    serializer_class = DisplayMessageReportSerializer
    parameters_serializer_class = DisplayMessageReportRequestSerializer
    report_model = DisplayMessageReport
    send = display_messages.display_messages_request
