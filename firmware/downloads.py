"""Firmware downloads for stations: signed, expiring URLs on the public file-server base URL.

A URL is ``{CSMS_FILE_SERVER_BASE_URL}/fw/<token>/<file name>``: the token is the image id and an expiry,
signed with the project's secret (``django.core.signing``), so nothing is stored per URL and the URL stays far
below OCPP's 512 characters. Stations download without a session (they have none); a wrong, tampered or expired
token gets 404 / 410 and nothing else.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from .models import FirmwareImage

_SALT = "firmware.download"
MAX_URL_CHARS = 512  # UpdateFirmware firmware.location / PublishFirmware location


def firmware_download_url(*, image: FirmwareImage, valid_until: datetime) -> str:
    """The URL a station downloads ``image`` from, valid until ``valid_until``."""
    token = signing.dumps([image.pk, int(valid_until.timestamp())], salt=_SALT, compress=True)
    name = (image.file.name or "").rsplit("/", 1)[-1][:80] or "firmware.bin"
    url = settings.CSMS_FILE_SERVER_BASE_URL + reverse("firmware-download", args=[token, name])
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"the firmware URL is {len(url)} characters, over OCPP's {MAX_URL_CHARS}")
    return url


def firmware_url_valid_until(
    *, retrieve_at: datetime | None, retries: int | None, retry_interval_s: int | None
) -> datetime:
    """When a URL handed out now must still work: the retrieve time, the station's retries, plus the setting's
    margin (``CSMS_FIRMWARE_URL_VALID_S``)."""
    start = max(retrieve_at or timezone.now(), timezone.now())
    retrying_s = (retries or 0) * (retry_interval_s or 0)
    return start + timedelta(seconds=retrying_s + settings.CSMS_FIRMWARE_URL_VALID_S)


@require_safe
def firmware_download(request: HttpRequest, token: str, name: str) -> HttpResponseBase:
    try:
        image_id, expires = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise Http404("unknown download") from None
    if time.time() > expires:
        return HttpResponse("this download URL has expired\n", status=410, content_type="text/plain")
    image = FirmwareImage.objects.filter(pk=image_id).first()
    if image is None:
        raise Http404("unknown download")
    response = FileResponse(image.file.open("rb"), as_attachment=True, filename=name)
    response["Content-MD5"] = image.md5_hex
    return response
