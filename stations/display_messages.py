"""Display messages (block O): SetDisplayMessage, ClearDisplayMessage and GetDisplayMessages -> NotifyDisplayMessages.

Every SetDisplayMessage and GetDisplayMessages, whichever door sent it (these services, the dashboard's "any
request" form, the admin, the API's commands endpoint), records its row in a send hook that allocates the id; the
answer hooks move it on. NotifyDisplayMessages parts are assembled by ``csms.multipart``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db.models import Max
from django.utils import timezone

from csms import multipart
from csms.timeutil import format_ocpp, parse_ocpp

from .commands import command_send
from .commands.pipeline import Sender
from .models import (
    ChargingStation,
    Command,
    CommandState,
    DisplayMessage,
    DisplayMessageReport,
    DisplayMessageReportState,
    DisplayMessageSource,
    DisplayMessageStatus,
    MessageFormat,
)

logger = logging.getLogger(__name__)

KIND = "NotifyDisplayMessages"


def _parse(value: str | None) -> datetime | None:
    return parse_ocpp(value) if value else None


def message_info_fields(info: dict[str, Any]) -> dict[str, Any]:
    """The model fields of an OCPP MessageInfoType."""
    content = info["message"]
    return {
        "message_id": info["id"],
        "priority": info["priority"],
        "state": info.get("state", ""),
        "start_at": _parse(info.get("startDateTime")),
        "end_at": _parse(info.get("endDateTime")),
        "transaction_id": info.get("transactionId", ""),
        "format": content["format"],
        "language": content.get("language", ""),
        "content": content["content"],
        "display": info.get("display"),
    }


def display_message_set(
    *,
    station: ChargingStation,
    content: str,
    priority: str,
    format: str = MessageFormat.UTF8,
    language: str = "",
    state: str = "",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    transaction_id: str = "",
    display: dict[str, Any] | None = None,
    replaces: int | None = None,
    user: Sender = None,
) -> DisplayMessage:
    """Send SetDisplayMessage (the id is allocated by the send hook, or ``replaces``: the id of a message the
    CSMS set on this station, which the station then replaces, O06); the message is ``requested`` until the
    station answers, ``failed`` when it is offline. Raises CommandValidationError (nothing stored) for a request
    the schema refuses."""
    message: dict[str, Any] = {"format": format, "content": content}
    if language:
        message["language"] = language
    info: dict[str, Any] = {"id": replaces or 0, "priority": priority, "message": message}
    if state:
        info["state"] = state
    if start_at is not None:
        info["startDateTime"] = format_ocpp(start_at)
    if end_at is not None:
        info["endDateTime"] = format_ocpp(end_at)
    if transaction_id:
        info["transactionId"] = transaction_id
    if display:
        info["display"] = display
    command = command_send(station=station, action="SetDisplayMessage", payload={"message": info}, user=user)
    return DisplayMessage.objects.get(command=command)


def csms_message_exists(*, station: ChargingStation, message_id: int) -> bool:
    """Whether the CSMS set a message with this id on the station (what a replacement may name)."""
    return DisplayMessage.objects.filter(
        station=station, source=DisplayMessageSource.CSMS, message_id=message_id
    ).exists()


def display_message_on_sending(command: Command) -> None:
    """Send hook of every SetDisplayMessage: allocate the id (per station) and record the message, or replace
    the CSMS's message that has the given id.

    # OCPP SPEC-SILENT: the spec lets the CSMS pick message ids; the CSMS allocates them per station. A given
    # ``id`` that names a message the CSMS set on this station replaces it (O06: the station replaces a message
    # with the same id); any other given id is replaced by a fresh one, so two doors never collide by accident.
    """
    info = command.request["message"]
    offline = command.state == CommandState.OFFLINE
    status = DisplayMessageStatus.FAILED if offline else DisplayMessageStatus.REQUESTED
    given = info.get("id") or 0
    replaced = (
        DisplayMessage.objects.select_for_update()
        .filter(station_id=command.station_id, source=DisplayMessageSource.CSMS, message_id=given)
        .first()
        if given > 0
        else None
    )
    if replaced is not None:
        for field, value in message_info_fields(info).items():
            setattr(replaced, field, value)
        replaced.command = command
        replaced.status, replaced.station_status, replaced.status_info = status, "", None
        replaced.clear_command, replaced.cleared_at = None, None
        replaced.save()
        return
    last = DisplayMessage.objects.filter(station_id=command.station_id).aggregate(m=Max("message_id"))["m"]
    message_id = max(last or 0, 0) + 1
    DisplayMessage.objects.create(
        station_id=command.station_id,
        source=DisplayMessageSource.CSMS,
        command=command,
        status=status,
        station_status="",
        **(message_info_fields(info) | {"message_id": message_id}),
    )
    command.request = {**command.request, "message": {**info, "id": message_id}}


def display_message_on_set_answered(command: Command) -> None:
    """SetDisplayMessage answered: Accepted, or rejected with the station's status (NotSupportedMessageFormat,
    NotSupportedPriority, NotSupportedState, UnknownTransaction, Rejected)."""
    response = command.response or {}
    status = response.get("status", "")
    DisplayMessage.objects.filter(command=command).update(
        status=DisplayMessageStatus.ACCEPTED if status == "Accepted" else DisplayMessageStatus.REJECTED,
        station_status=status,
        status_info=response.get("statusInfo"),
        updated_at=timezone.now(),
    )


def _failure_info(command: Command) -> dict[str, str]:
    """A StatusInfoType-shaped record of why a command got no usable answer (shown where the answer would be)."""
    reason = "Timeout" if command.state == CommandState.TIMED_OUT else (command.error_code or "Failed")
    return {"reasonCode": reason[:20], "additionalInfo": command.error_description[:512]}


def display_message_on_set_failed(command: Command) -> None:
    """SetDisplayMessage got a CALLERROR, no answer in time, or the connection closed: the message is ``failed``
    (the reason in ``status_info``). After a timeout the station may show it all the same: GetDisplayMessages
    tells (its reported rows are kept apart from the CSMS's)."""
    DisplayMessage.objects.filter(command=command, status=DisplayMessageStatus.REQUESTED).update(
        status=DisplayMessageStatus.FAILED, status_info=_failure_info(command), updated_at=timezone.now()
    )


def display_message_clear(*, station: ChargingStation, message_id: int, user: Sender = None) -> Command:
    """Send ClearDisplayMessage; the message becomes ``cleared`` when the station accepts."""
    command = command_send(station=station, action="ClearDisplayMessage", payload={"id": message_id}, user=user)
    DisplayMessage.objects.filter(station=station, message_id=message_id, cleared_at__isnull=True).update(
        clear_command=command, updated_at=timezone.now()
    )
    return command


def display_message_on_clear_answered(command: Command) -> None:
    """ClearDisplayMessage answered (from any door): Accepted clears the message (the CSMS's row and the
    station's reported one); Unknown changes nothing (the station knows no such message)."""
    if (command.response or {}).get("status") != "Accepted":
        return
    now = timezone.now()
    DisplayMessage.objects.filter(
        station_id=command.station_id, message_id=command.request["id"], cleared_at__isnull=True
    ).update(status=DisplayMessageStatus.CLEARED, cleared_at=now, updated_at=now)


def display_messages_request(
    *,
    station: ChargingStation,
    ids: list[int] | None = None,
    priority: str = "",
    state: str = "",
    user: Sender = None,
) -> DisplayMessageReport:
    """Send GetDisplayMessages (the requestId is allocated by the send hook)."""
    payload: dict[str, Any] = {}
    if ids:
        payload["id"] = ids
    if priority:
        payload["priority"] = priority
    if state:
        payload["state"] = state
    command = command_send(station=station, action="GetDisplayMessages", payload=payload, user=user)
    return DisplayMessageReport.objects.get(command=command)


def _report_locked(station_id: int, request_id: int) -> DisplayMessageReport:
    DisplayMessageReport.objects.bulk_create(
        [DisplayMessageReport(station_id=station_id, request_id=request_id)], ignore_conflicts=True
    )
    return DisplayMessageReport.objects.select_for_update().get(station_id=station_id, request_id=request_id)


def display_messages_on_get_sending(command: Command) -> None:
    """Send hook of every GetDisplayMessages: allocate the requestId (per station) and record the report."""
    last = DisplayMessageReport.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))["m"]
    request_id = max(last or 0, 0) + 1
    offline = command.state == CommandState.OFFLINE
    DisplayMessageReport.objects.create(
        station_id=command.station_id,
        request_id=request_id,
        command=command,
        state=DisplayMessageReportState.FAILED if offline else DisplayMessageReportState.REQUESTED,
    )
    command.request = {**command.request, "requestId": request_id}


def display_messages_on_get_answered(command: Command) -> None:
    """GetDisplayMessages answered: Accepted (parts follow) or Unknown (no such message; nothing follows)."""
    status = (command.response or {}).get("status", "")
    new = DisplayMessageReportState.ACCEPTED if status == "Accepted" else DisplayMessageReportState.UNKNOWN
    DisplayMessageReport.objects.filter(command=command, state=DisplayMessageReportState.REQUESTED).update(
        state=new, updated_at=timezone.now()
    )


def display_messages_on_get_failed(command: Command) -> None:
    """GetDisplayMessages got no usable answer: the report is ``failed`` unless parts already arrived (a station
    that timed out the answer may still report; its parts complete the report as usual)."""
    DisplayMessageReport.objects.filter(command=command, state=DisplayMessageReportState.REQUESTED).update(
        state=DisplayMessageReportState.FAILED, updated_at=timezone.now()
    )


def display_messages_part_record(
    *, station_id: int, request_id: int, tbc: bool, message_info: list[dict[str, Any]], payload: dict[str, Any]
) -> DisplayMessageReport:
    """One NotifyDisplayMessages part. Once the report is complete, the station's reported messages are exactly
    the messages of its parts (a part arriving after the final one is added in the same way)."""
    ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
    # OCPP SPEC-SILENT: a NotifyDisplayMessages for a requestId the CSMS never sent is stored all the same (a
    # report row without a command): the station's word on what it displays.
    report = _report_locked(station_id, request_id)
    outcome = multipart.part_receive(
        station_id=station_id, kind=KIND, request_id=request_id, seq_no=None, tbc=tbc, payload=payload
    )
    if outcome.duplicate:
        return report
    report.parts_received = outcome.assembly.parts_received
    report.state = DisplayMessageReportState.COMPLETE if outcome.complete else DisplayMessageReportState.RECEIVING
    if outcome.complete:
        infos = [
            info
            for part in multipart.parts_payloads(station_id=station_id, kind=KIND, request_ids=[request_id])[request_id]
            for info in part.get("messageInfo", [])
        ]
        _reported_replace(station_id=station_id, request_id=request_id, infos=infos)
        report.messages_received = len({info["id"] for info in infos})
        report.completed_at = report.completed_at or timezone.now()
    report.save()
    return report


def _reported_replace(*, station_id: int, request_id: int, infos: list[dict[str, Any]]) -> None:
    # OCPP SPEC-SILENT: a complete report replaces the reported set, whatever it was asked for (an id, a
    # priority or a state filter): the last word of the station is shown, the CSMS's own rows are kept apart.
    by_id = {info["id"]: info for info in infos}  # a message listed twice: the later part wins
    DisplayMessage.objects.filter(station_id=station_id, source=DisplayMessageSource.REPORTED).delete()
    DisplayMessage.objects.bulk_create(
        [
            DisplayMessage(
                station_id=station_id,
                source=DisplayMessageSource.REPORTED,
                status=DisplayMessageStatus.REPORTED,
                request_id=request_id,
                **message_info_fields(info),
            )
            for info in by_id.values()
        ]
    )
