"""The HTTP(S) side of the stations' file server: ``PUT``/``POST /files/upload/{token}/[name]``, an ASGI app
mounted before Django (``csms/asgi.py``).

Streamed: the body is written to a temporary file chunk by chunk (never held in memory), the slot's size limit is
checked against ``Content-Length`` before reading and against the bytes read while reading (413 as soon as it is
passed). A multipart/form-data POST is parsed from that file by Django's streaming parser; its first file part is
the upload (whatever the field name). No session, no CSRF: the token is the credential. Answers are
``text/plain``: 200 stored; 400 a POST without a file part; 404 unknown token; 405 another method; 409 already
used; 410 expired; 413 too large. (daphne itself spools a request body larger than 100 kB to a temporary file
before the app sees it: cap bodies at the reverse proxy too, e.g. Caddy's ``request_body max_size``.)
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import UploadedFile
from django.db import close_old_connections

from . import fileserver
from .models import FileTransferProtocol

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Boundaries and part headers of a multipart body, on top of the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
WRITE_BATCH_BYTES = 1024 * 1024


def is_upload_path(path: str) -> bool:
    return path.startswith(fileserver.UPLOAD_PATH)


async def _answer(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = (text + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def _db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    def call(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


def _multipart_file(path: str, content_type: str, size: int) -> UploadedFile:
    """The first file part of a multipart body stored at ``path`` (a temporary file; close it when done)."""
    from django.core.files.uploadhandler import TemporaryFileUploadHandler
    from django.http.multipartparser import MultiPartParser, MultiPartParserError

    meta = {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(size)}
    try:
        with open(path, "rb") as stream:
            _, files = MultiPartParser(meta, stream, [TemporaryFileUploadHandler()]).parse()
    except MultiPartParserError as exc:
        raise fileserver.UploadRefused(400, f"bad multipart body: {exc}") from exc
    parts = [part for key in files for part in files.getlist(key)]
    for extra in parts[1:]:
        extra.close()
    if not parts:
        raise fileserver.UploadRefused(400, "the multipart body has no file part")
    return parts[0]


def _store(*, slot: fileserver.OpenSlot, path: str, method: str, content_type: str, size: int, name: str) -> None:
    if method == "POST":
        if not content_type.lower().startswith("multipart/form-data"):
            raise fileserver.UploadRefused(400, "POST needs multipart/form-data (or PUT the raw file)")
        part = _multipart_file(path, content_type, size)
        try:
            part.seek(0)
            fileserver.upload_store(
                slot_pk=slot.pk, content=part, size_bytes=part.size or 0, filename=part.name or name, via="http-post"
            )
        finally:
            part.close()
        return
    with open(path, "rb") as content:
        fileserver.upload_store(slot_pk=slot.pk, content=content, size_bytes=size, filename=name, via="http-put")


async def upload_app(scope: Scope, receive: Receive, send: Send) -> None:
    method = scope["method"]
    if method not in ("PUT", "POST"):
        await _answer(send, 405, "use PUT (the raw file) or POST (multipart/form-data)", [(b"allow", b"PUT, POST")])
        return
    rest = scope["path"][len(fileserver.UPLOAD_PATH) :]
    token, _, name = rest.partition("/")
    headers = {key.lower(): value for key, value in scope.get("headers", [])}
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    try:
        slot: fileserver.OpenSlot = await _db(fileserver.slot_open)(token=token, protocol=FileTransferProtocol.HTTP)
    except fileserver.UploadRefused as refused:
        await _answer(send, refused.status, refused.message)
        return
    limit = slot.max_bytes + (MULTIPART_OVERHEAD_BYTES if method == "POST" else 0)
    declared = headers.get(b"content-length")
    too_large = f"the upload is larger than the limit of {slot.max_bytes} bytes"
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await _answer(send, 413, too_large, [(b"connection", b"close")])
        return
    fd, path = tempfile.mkstemp(prefix="csms-upload-")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            batch = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                more = bool(message.get("more_body", False))
                size += len(chunk)
                if size > limit:
                    await _answer(send, 413, too_large, [(b"connection", b"close")])
                    return
                batch += chunk
                if len(batch) >= WRITE_BATCH_BYTES or not more:
                    await asyncio.to_thread(out.write, bytes(batch))
                    batch.clear()
        try:
            await _db(_store)(
                slot=slot, path=path, method=method, content_type=content_type, size=size, name=unquote(name)
            )
        except fileserver.UploadRefused as refused:
            await _answer(send, refused.status, refused.message)
            return
        await _answer(send, 200, "stored")
    finally:
        await asyncio.to_thread(os.unlink, path)


def with_uploads(django_app: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """HTTP ASGI app: the upload path to ``upload_app``, everything else to Django."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_upload_path(scope["path"]):
            await upload_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app
