"""Shared pieces of the file server and log tests: the media directory the live servers and this process share,
HTTP uploads as stations send them, slots."""

from __future__ import annotations

import http.client
import os
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from firmware import fileserver
from firmware.models import UploadSlot
from tests.conftest import LiveServer

# One directory per test session, used by this process and by the live daphne it starts (CSMS_MEDIA_ROOT).
MEDIA = Path(tempfile.gettempdir()) / f"csms-test-media-{os.getpid()}"


def media_server(csms_server: Any) -> LiveServer:
    """The live daphne storing uploads under MEDIA (one process for the whole session)."""
    server: LiveServer = csms_server("files", CSMS_MEDIA_ROOT=str(MEDIA))
    return server


def upload(
    url: str, method: str, body: bytes | Iterable[bytes], headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """A raw HTTP upload (PUT or POST) to ``url``; ``body`` an iterable of chunks is sent chunked."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        conn.request(method, parts.path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def multipart(field: str, filename: str, content: bytes, boundary: str = "----csms7MA4YWxk") -> tuple[bytes, str]:
    """A multipart/form-data body with one text field and one file part, as stations' HTTP clients send it."""
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nfrom the station\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def slot(protocol: str = "http", *, max_bytes: int | None = None, expired: bool = False) -> UploadSlot:
    made = fileserver.slot_create(protocol=protocol)
    if max_bytes is not None:
        made.max_bytes = max_bytes
    if expired:
        made.expires_at = timezone.now() - timedelta(seconds=1)
    made.save()
    return made


def stored(made: UploadSlot) -> bytes | None:
    """The file stored in the slot, or None when nothing was."""
    made.refresh_from_db()
    if made.used_at is None or not made.file:
        return None
    with made.file.open("rb") as f:
        return f.read()


def media_files() -> list[str]:
    return sorted(str(p.relative_to(MEDIA)) for p in MEDIA.rglob("*") if p.is_file()) if MEDIA.exists() else []
