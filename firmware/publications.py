"""PublishFirmware / UnpublishFirmware to local controllers (block L04/L05) and their
PublishFirmwareStatusNotifications.

Every PublishFirmware, whichever door sent it, gets its ``requestId`` and a ``FirmwarePublication`` row from the
send hook (the image is found by its MD5 ``checksum``); the answer hooks record PublishFirmware's and
UnpublishFirmware's status; the local controller's PublishFirmwareStatusNotification sets the publication's status
and the locations it publishes the file at.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from stations.commands import command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command

from .downloads import firmware_download_url, firmware_url_valid_until
from .models import FirmwareImage, FirmwarePublication


def firmware_publish(
    *,
    station: ChargingStation,
    firmware: FirmwareImage,
    retries: int | None = None,
    retry_interval_s: int | None = None,
    user: Sender = None,
) -> FirmwarePublication:
    """Send PublishFirmware: the local controller downloads the image from our signed URL and checks its MD5."""
    valid_until = firmware_url_valid_until(retrieve_at=None, retries=retries, retry_interval_s=retry_interval_s)
    payload: dict[str, Any] = {
        "location": firmware_download_url(image=firmware, valid_until=valid_until),
        "checksum": firmware.md5_hex,
    }
    if retries is not None:
        payload["retries"] = retries
    if retry_interval_s is not None:
        payload["retryInterval"] = retry_interval_s
    command = command_send(station=station, action="PublishFirmware", payload=payload, user=user)
    return FirmwarePublication.objects.get(command=command)


def firmware_unpublish(*, station: ChargingStation, firmware: FirmwareImage, user: Sender = None) -> Command:
    """Send UnpublishFirmware for the image's checksum; the answer is recorded on its publications."""
    return command_send(station=station, action="UnpublishFirmware", payload={"checksum": firmware.md5_hex}, user=user)


def publish_firmware_on_sending(command: Command) -> None:
    """Send hook of every PublishFirmware: allocate the requestId (per station) and record the publication."""
    last = FirmwarePublication.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))["m"]
    request_id = (last or 0) + 1
    command.request = {**command.request, "requestId": request_id}
    checksum = command.request["checksum"]
    FirmwarePublication.objects.create(
        station_id=command.station_id,
        firmware=FirmwareImage.objects.filter(md5_hex=checksum).order_by("-pk").first(),
        command=command,
        request_id=request_id,
        checksum=checksum,
    )


def publish_firmware_on_answered(command: Command) -> None:
    status = str((command.response or {}).get("status", ""))[:20]
    FirmwarePublication.objects.filter(command=command).update(answer_status=status)


def unpublish_firmware_on_answered(command: Command) -> None:
    """UnpublishFirmware answered: Unpublished / NoFirmware / DownloadOngoing on the checksum's publications."""
    status = str((command.response or {}).get("status", ""))[:20]
    FirmwarePublication.objects.filter(station_id=command.station_id, checksum=command.request["checksum"]).update(
        unpublish_status=status
    )


def publish_status_record(
    *, station_id: int, status: str, request_id: int | None, locations: list[str]
) -> FirmwarePublication | None:
    """A PublishFirmwareStatusNotification: the publication's status and, once Published, its locations.

    # OCPP SPEC-SILENT: a status for an unknown requestId (or none, as a triggered Idle) changes nothing; it is in
    # the message log. Returns the publication updated, if any.
    """
    with transaction.atomic():
        # The station row first, as command_finish (PublishFirmware's answer) takes it: no deadlock between the
        # answer's hook and the status the station sends right after it.
        ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
        publications = FirmwarePublication.objects.select_for_update().filter(station_id=station_id)
        publication = (
            publications.filter(request_id=request_id).first()
            if request_id is not None
            else publications.filter(status_at__gte=timezone.now() - timedelta(days=1)).order_by("-pk").first()
        )
        if publication is None:
            return None
        publication.status = status
        publication.status_at = timezone.now()
        if locations:
            publication.locations = locations
        publication.save(update_fields=["status", "status_at", "locations"])
    return publication
