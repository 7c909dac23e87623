"""The stations' file server: per-request upload slots and their short token URLs, and the storing of an upload.

Each upload (a GetLog's log file) gets an ``UploadSlot``: a random token, a size limit
(``CSMS_UPLOAD_MAX_BYTES``), an expiry (``CSMS_UPLOAD_SLOT_TTL_S`` plus the station's own retries) and single
use. The station is given our own short URL on the public base URL (never a presigned storage URL: OCPP caps
``remoteLocation`` at 512 characters):

- HTTP(S): ``{CSMS_FILE_SERVER_BASE_URL}/files/upload/{token}/`` takes a PUT (raw body) or a POST
  multipart/form-data (the first file part, whatever its field name); a name after the token
  (``.../{token}/diag.zip``, as stations that append their file name send) names the file. Served by
  ``firmware.upload_asgi`` (beside Django, streamed, the size limit enforced while reading).
- FTP: ``ftp://{user}:{password}@{host}:{port}/`` where user and password are the two halves of the token
  (``firmware.ftp``, a pyftpdlib server exposing only that slot's empty directory).

The file is moved into Django's default storage (``STORAGES["default"]``: ``MEDIA_ROOT`` by default) and
attached to the slot. Refusals, with nothing stored: unknown token 404, expired 410, already used 409, larger than
the slot's limit 413, a POST without a file part 400.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from .models import FileTransferProtocol, StationFileTransfer, StationFileTransferChoice, UploadSlot

logger = logging.getLogger(__name__)

UPLOAD_PATH = "/files/upload/"
FTP_USER_CHARS = 12  # the token's first characters are the FTP user, the rest its password


class UploadRefused(Exception):
    """An upload the slot does not take; ``status`` is the HTTP status (the FTP server maps it to a reply)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class OpenSlot:
    pk: int
    max_bytes: int


def slot_create(*, protocol: str, extra_valid_s: int = 0) -> UploadSlot:
    """A new single-use slot, valid ``CSMS_UPLOAD_SLOT_TTL_S`` + ``extra_valid_s`` (the station's retries)."""
    token = secrets.token_urlsafe(24)  # 32 characters, 192 bits
    return UploadSlot.objects.create(
        token=token,
        protocol=protocol,
        max_bytes=settings.CSMS_UPLOAD_MAX_BYTES,
        expires_at=timezone.now() + timedelta(seconds=settings.CSMS_UPLOAD_SLOT_TTL_S + max(extra_valid_s, 0)),
    )


def ftp_credentials(token: str) -> tuple[str, str]:
    return token[:FTP_USER_CHARS], token[FTP_USER_CHARS:]


def ftp_public_url() -> str:
    """``CSMS_FTP_PUBLIC_URL``, or the file server's public host on ``CSMS_FTP_PORT``."""
    if settings.CSMS_FTP_PUBLIC_URL:
        return str(settings.CSMS_FTP_PUBLIC_URL).rstrip("/")
    host = urlsplit(settings.CSMS_FILE_SERVER_BASE_URL).hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"ftp://{host}:{settings.CSMS_FTP_PORT}"


def slot_url(slot: UploadSlot) -> str:
    """The URL handed to the station (at most 512 characters with any sane base URL)."""
    if slot.protocol == FileTransferProtocol.FTP:
        user, password = ftp_credentials(slot.token)
        scheme, rest = ftp_public_url().split("://", 1)
        return f"{scheme}://{user}:{password}@{rest}/"
    return f"{settings.CSMS_FILE_SERVER_BASE_URL}{UPLOAD_PATH}{slot.token}/"


def station_upload_protocol(*, station_id: int) -> str:
    """HTTP(S) by default; FTP when the operator chose it for the station, or (``auto``) when the station's device
    model lists FTP in ``OCPPCommCtrlr.FileTransferProtocols`` and no HTTP variant."""
    from devicemodel.models import VariableAttribute

    choice = StationFileTransfer.objects.filter(station_id=station_id).values_list("protocol", flat=True).first()
    if choice == StationFileTransferChoice.FTP:
        return FileTransferProtocol.FTP
    if choice == StationFileTransferChoice.HTTP:
        return FileTransferProtocol.HTTP
    value = (
        VariableAttribute.objects.filter(
            variable__station_id=station_id,
            variable__component_name="OCPPCommCtrlr",
            variable__component_instance="",
            variable__name="FileTransferProtocols",
            variable__gone_at__isnull=True,
            type="Actual",
        )
        .values_list("value", flat=True)
        .first()
    )
    listed = {item.strip().upper() for item in (value or "").split(",") if item.strip()}
    if "FTP" in listed and not listed & {"HTTP", "HTTPS"}:
        return FileTransferProtocol.FTP
    return FileTransferProtocol.HTTP


def _refusal(slot: UploadSlot | None) -> UploadRefused | None:
    if slot is None:
        return UploadRefused(404, "unknown upload URL")
    if slot.used_at is not None:
        return UploadRefused(409, "this upload URL was already used")
    if slot.expires_at <= timezone.now():
        return UploadRefused(410, "this upload URL has expired")
    return None


def slot_open(*, token: str, protocol: str) -> OpenSlot:
    """The slot a token opens, or UploadRefused (404 unknown or for another protocol, 410 expired, 409 used)."""
    slot = UploadSlot.objects.filter(token=token, protocol=protocol).first()
    if (refused := _refusal(slot)) is not None:
        raise refused
    assert slot is not None
    return OpenSlot(pk=slot.pk, max_bytes=slot.max_bytes)


def ftp_slot_open(*, user: str, password: str) -> OpenSlot:
    """The FTP slot of a user and password (both halves of the token, compared in constant time)."""
    slot = UploadSlot.objects.filter(token__startswith=user, protocol=FileTransferProtocol.FTP).first()
    if len(user) != FTP_USER_CHARS or slot is None or not hmac.compare_digest(slot.token, user + password):
        raise UploadRefused(404, "unknown upload credentials")
    return slot_open(token=slot.token, protocol=FileTransferProtocol.FTP)


def safe_filename(filename: str) -> str:
    """The last part of a station's file name, safe for storage ('' when nothing usable is left)."""
    try:
        return get_valid_filename(Path(filename).name)[:200] if filename else ""
    except SuspiciousFileOperation:
        return ""


def upload_store(*, slot_pk: int, content: IO[bytes], size_bytes: int, filename: str, via: str) -> UploadSlot:
    """Store a received file in the slot (under its row lock: of two uploads racing for one slot, one wins, the
    other gets 409). Raises UploadRefused with nothing stored."""
    with transaction.atomic():
        slot = UploadSlot.objects.select_for_update().filter(pk=slot_pk).first()
        if (refused := _refusal(slot)) is not None:
            raise refused
        assert slot is not None
        if size_bytes > slot.max_bytes:
            raise UploadRefused(413, f"the upload is larger than the limit of {slot.max_bytes} bytes")
        name = safe_filename(filename)
        slot.filename = name or f"upload-{slot.pk}.bin"
        slot.file.save(f"{slot.pk}-{slot.filename}", File(content), save=False)
        slot.size_bytes = size_bytes
        slot.used_at = timezone.now()
        slot.received_via = via
        slot.save(update_fields=["filename", "file", "size_bytes", "used_at", "received_via"])
        transaction.on_commit(lambda: logger.info("upload slot %s: %s bytes via %s", slot_pk, size_bytes, via))
    return slot
