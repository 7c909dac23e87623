"""Log retrieval (block N): GetLog -> the station uploads its log to our file server -> LogStatusNotification.

Every GetLog, whichever door sent it (``log_request_send``, the API, the dashboard's "any request" form, the
admin, a job), gets a ``LogRequest`` from the send hook: the ``requestId`` is allocated per station, an upload
slot is opened (HTTP by default, FTP per ``fileserver.station_upload_protocol``) and its URL replaces
``log.remoteLocation`` (the station always uploads to this CSMS; whatever location a caller gave is replaced).
The answer hook records Accepted / Rejected / AcceptedCanceled and the ``filename``; LogStatusNotification moves
the request on and keeps every status with its time. The beat job ``firmware.log_requests_expire`` ends requests
whose command failed (``failed``) or whose slot expired without a file or a final status (``timed_out``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from stations.commands import command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, CommandState

from . import fileserver
from .models import LogRequest, LogRequestState, LogType, StationFileTransfer

logger = logging.getLogger(__name__)

PLACEHOLDER_LOCATION = "csms://upload-slot"  # replaced by the send hook
_ANSWERS = {
    "Accepted": LogRequestState.ACCEPTED,
    "AcceptedCanceled": LogRequestState.ACCEPTED,
    "Rejected": LogRequestState.REJECTED,
}
# LogStatusNotification status -> the request's state (Idle changes nothing: the station is not uploading).
_STATUSES = {
    "Uploading": LogRequestState.UPLOADING,
    "Uploaded": LogRequestState.UPLOADED,
    "UploadFailure": LogRequestState.UPLOAD_FAILED,
    "BadMessage": LogRequestState.UPLOAD_FAILED,
    "PermissionDenied": LogRequestState.UPLOAD_FAILED,
    "NotSupportedOperation": LogRequestState.UPLOAD_FAILED,
    "AcceptedCanceled": LogRequestState.CANCELLED,
}
FINAL = {
    LogRequestState.UPLOADED,
    LogRequestState.UPLOAD_FAILED,
    LogRequestState.CANCELLED,
    LogRequestState.REJECTED,
    LogRequestState.FAILED,
    LogRequestState.TIMED_OUT,
}
OPEN = (LogRequestState.REQUESTED, LogRequestState.ACCEPTED, LogRequestState.UPLOADING)


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def log_request_send(
    *,
    station: ChargingStation,
    log_type: str = LogType.DIAGNOSTICS,
    oldest_timestamp: datetime | None = None,
    latest_timestamp: datetime | None = None,
    retries: int | None = None,
    retry_interval_s: int | None = None,
    user: Sender = None,
) -> LogRequest:
    """Send GetLog (requestId and remoteLocation filled in by the send hook). Raises CommandValidationError."""
    log: dict[str, Any] = {"remoteLocation": PLACEHOLDER_LOCATION}
    if oldest_timestamp:
        log["oldestTimestamp"] = _timestamp(oldest_timestamp)
    if latest_timestamp:
        log["latestTimestamp"] = _timestamp(latest_timestamp)
    payload: dict[str, Any] = {"logType": log_type, "log": log}
    if retries is not None:
        payload["retries"] = retries
    if retry_interval_s is not None:
        payload["retryInterval"] = retry_interval_s
    command = command_send(station=station, action="GetLog", payload=payload, user=user)
    return LogRequest.objects.get(command=command)


def log_on_sending(command: Command) -> None:
    """Send hook of every GetLog: allocate the requestId, open the upload slot, point remoteLocation at it."""
    payload = command.request
    last = LogRequest.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))
    request_id = max(last["m"] or 0, 0) + 1
    retries = payload.get("retries")
    interval = payload.get("retryInterval")
    protocol = fileserver.station_upload_protocol(station_id=command.station_id)
    # OCPP SPEC-SILENT: how long the station may take; the slot outlives its retries x retryInterval.
    slot = fileserver.slot_create(protocol=protocol, extra_valid_s=(retries or 0) * (interval or 0))
    location = fileserver.slot_url(slot)
    log = dict(payload.get("log") or {})
    offline = command.state == CommandState.OFFLINE
    LogRequest.objects.create(
        station_id=command.station_id,
        request_id=request_id,
        command=command,
        slot=slot,
        log_type=payload.get("logType", LogType.DIAGNOSTICS),
        oldest_timestamp=parse_datetime(log["oldestTimestamp"]) if log.get("oldestTimestamp") else None,
        latest_timestamp=parse_datetime(log["latestTimestamp"]) if log.get("latestTimestamp") else None,
        retries=retries,
        retry_interval_s=interval,
        protocol=protocol,
        remote_location=location,
        state=LogRequestState.FAILED if offline else LogRequestState.REQUESTED,
        completed_at=timezone.now() if offline else None,
        requested_by_id=command.created_by_id,
    )
    command.request = {**payload, "requestId": request_id, "log": {**log, "remoteLocation": location}}


def log_on_answered(command: Command) -> None:
    """GetLog answered: Accepted, Rejected or AcceptedCanceled (accepted; the station's upload in progress for an
    earlier request is cancelled) and the file name the station will use."""
    response = command.response or {}
    status = response.get("status", "")
    request = LogRequest.objects.select_for_update().filter(command=command).first()
    if request is None:
        return
    request.station_status = status
    request.station_filename = response.get("filename", "")
    request.status_info = response.get("statusInfo")
    if request.state == LogRequestState.REQUESTED:
        request.state = _ANSWERS.get(status, LogRequestState.REJECTED)
        if request.state == LogRequestState.REJECTED:
            request.completed_at = timezone.now()
    request.save()
    if status == "AcceptedCanceled":
        LogRequest.objects.filter(station_id=request.station_id, state__in=OPEN).exclude(pk=request.pk).update(
            state=LogRequestState.CANCELLED, completed_at=timezone.now(), updated_at=timezone.now()
        )


def log_status_record(
    *, station_id: int, status: str, request_id: int | None, status_info: dict[str, Any] | None = None
) -> LogRequest | None:
    """One LogStatusNotification. Kept on the station (last status, whatever the requestId) and, with a
    requestId, on its log request: every status appended with its time, the state moved on.

    # OCPP SPEC-SILENT: a status for a requestId this CSMS never sent (another CSMS's GetLog, or one from before
    # a database reset) is stored as a log request of state ``unsolicited`` without command or slot, so the
    # operator sees it; a status without requestId (Idle, after a TriggerMessage) is kept on the station only.
    """
    now = timezone.now()
    StationFileTransfer.objects.update_or_create(
        station_id=station_id,
        defaults={"last_log_status": status, "last_log_request_id": request_id, "last_log_status_at": now},
    )
    if request_id is None:
        return None
    entry: dict[str, Any] = {"status": status, "at": now.isoformat().replace("+00:00", "Z")}
    if status_info:
        entry["statusInfo"] = status_info
    with transaction.atomic():
        LogRequest.objects.bulk_create(
            [LogRequest(station_id=station_id, request_id=request_id, state=LogRequestState.UNSOLICITED)],
            ignore_conflicts=True,
        )
        request = LogRequest.objects.select_for_update().get(station_id=station_id, request_id=request_id)
        request.statuses = [*request.statuses, entry]
        request.last_status = status
        new_state = _STATUSES.get(status)
        if new_state is not None and request.state != LogRequestState.UNSOLICITED:
            request.state = new_state
            request.completed_at = now if new_state in FINAL else None
        request.save()
    return request


def log_requests_expire() -> int:
    """End log requests that will not complete: their command failed or timed out (``failed``), or their upload
    slot expired with no file and no final status (``timed_out``). Returns how many."""
    now = timezone.now()
    failed = LogRequest.objects.filter(
        state=LogRequestState.REQUESTED,
        command__state__in=[CommandState.FAILED, CommandState.TIMED_OUT, CommandState.OFFLINE],
    ).update(state=LogRequestState.FAILED, completed_at=now, updated_at=now)
    timed_out = (
        LogRequest.objects.filter(state__in=OPEN, slot__expires_at__lte=now)
        .filter(Q(slot__used_at__isnull=True))
        .update(state=LogRequestState.TIMED_OUT, completed_at=now, updated_at=now)
    )
    return failed + timed_out


@shared_task(name="firmware.log_requests_expire", acks_late=True)
def log_requests_expire_task() -> int:
    return log_requests_expire()


def register() -> None:
    """Hooks and the handler (called from ``FirmwareConfig.ready``)."""
    from stations.commands import on_command_answered, on_command_sending

    from . import handlers_logs  # noqa: F401 - registers LogStatusNotification

    on_command_sending("GetLog", allocates="requestId")(log_on_sending)
    on_command_answered("GetLog")(log_on_answered)
