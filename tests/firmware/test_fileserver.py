"""The stations' file server over real sockets: HTTP PUT and multipart POST against a live daphne, FTP with ftplib
against the pyftpdlib server; what is stored, and what is refused with nothing stored."""

from __future__ import annotations

import ftplib
import io
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from firmware import fileserver, logs
from firmware.api.logs import LogRequestSerializer
from firmware.ftp import ftp_server
from firmware.models import LogRequest, StationFileTransfer
from stations.models import ChargingStation
from tests import conftest
from tests.firmware.helpers import MEDIA, media_files, media_server, multipart, slot, stored, upload

pytestmark = pytest.mark.live


@pytest.fixture
def media(settings: Any) -> Path:
    settings.MEDIA_ROOT = MEDIA
    return MEDIA


def url(server: Any, made: Any, suffix: str = "") -> str:
    if made.protocol == "http":  # the URL given to stations: on the configured base URL
        assert fileserver.slot_url(made) == f"{django_settings.CSMS_FILE_SERVER_BASE_URL}/files/upload/{made.token}/"
    return f"{server.http_url}{fileserver.UPLOAD_PATH}{made.token}/{suffix}"


def online_without_socket(identity: str) -> ChargingStation:
    # Online on a channel nobody reads: the GetLog is recorded and dispatched, no station answers it.
    return ChargingStation.objects.create(identity=identity, is_online=True, channel_name="test.nobody")


def test_http_put_and_multipart_post_store_the_file_once(csms_server, media, settings):
    server = media_server(csms_server)
    log = b"2026-12-01T10:00:00Z boot\n" * 5000  # 130 kB: daphne spools it to disk, we stream it on
    put_slot = slot()

    assert upload(url(server, put_slot, "diag%20log.txt"), "PUT", log) == (200, "stored\n")
    assert stored(put_slot) == log
    assert (put_slot.filename, put_slot.size_bytes, put_slot.received_via) == ("diag_log.txt", len(log), "http-put")

    # The multipart POST goes to the URL a GetLog gave the station.
    settings.CSMS_FILE_SERVER_BASE_URL = server.http_url
    request = logs.log_request_send(station=online_without_socket("CS-POST"))
    assert request.command is not None and request.slot is not None
    post_slot, post_url = request.slot, request.command.request["log"]["remoteLocation"]
    body, content_type = multipart("uploadedFile", "CS-1-diagnostics.zip", log)
    assert upload(post_url, "POST", body, {"Content-Type": content_type}) == (200, "stored\n")
    assert stored(post_slot) == log
    assert (post_slot.filename, post_slot.size_bytes, post_slot.received_via) == (
        "CS-1-diagnostics.zip",
        len(log),
        "http-post",
    )
    before = media_files()
    # Single use: a second upload to either URL is refused and the first file stays as it was.
    assert upload(url(server, put_slot), "PUT", b"other") == (409, "this upload URL was already used\n")
    assert upload(post_url, "POST", body, {"Content-Type": content_type})[0] == 409
    assert stored(put_slot) == log and stored(post_slot) == log
    assert media_files() == before


def test_http_refusals_store_nothing(csms_server, media):
    server = media_server(csms_server)
    before = media_files()
    expired, small, small_chunked, small_post, no_file = (
        slot(expired=True),
        slot(max_bytes=1000),
        slot(max_bytes=1000),
        slot(max_bytes=1000),
        slot(),
    )
    unknown = f"{server.http_url}{fileserver.UPLOAD_PATH}not-a-token/"

    assert upload(unknown, "PUT", b"x") == (404, "unknown upload URL\n")
    assert upload(url(server, expired), "PUT", b"x") == (410, "this upload URL has expired\n")
    too_large = "the upload is larger than the limit of 1000 bytes\n"
    assert upload(url(server, small), "PUT", b"x" * 1001) == (413, too_large)  # by Content-Length
    # Chunked, no Content-Length: refused while reading, once the limit is passed.
    assert upload(url(server, small_chunked), "PUT", iter([b"x" * 600, b"x" * 600])) == (413, too_large)
    # Multipart: the file part itself is over the limit although the body fits the multipart allowance.
    body, content_type = multipart("file", "big.log", b"y" * 1001)
    assert upload(url(server, small_post), "POST", body, {"Content-Type": content_type}) == (413, too_large)
    form = b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n'
    assert upload(url(server, no_file), "POST", form, {"Content-Type": "multipart/form-data; boundary=b"}) == (
        400,
        "the multipart body has no file part\n",
    )
    assert upload(url(server, no_file), "GET", b"")[0] == 405
    # The FTP slot's token is not an HTTP upload URL.
    ftp_slot = slot("ftp")
    assert upload(url(server, ftp_slot), "PUT", b"x")[0] == 404

    for refused in (expired, small, small_chunked, small_post, no_file, ftp_slot):
        assert stored(refused) is None
    assert media_files() == before
    # The refused slots stay open: a correct upload to the small one still works.
    assert upload(url(server, small), "PUT", b"z" * 1000) == (200, "stored\n")
    assert stored(small) == b"z" * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ftpd(transactional_db: None, settings: Any, tmp_path: Any) -> Iterator[tuple[str, int]]:
    settings.MEDIA_ROOT = MEDIA
    settings.CSMS_FTP_PASSIVE_PORTS = ""
    settings.CSMS_FTP_INCOMING_DIR = tmp_path / "incoming"
    port = free_port()
    server = ftp_server(host="127.0.0.1", port=port)
    server.handler.auth_failed_timeout = 0  # production waits 3 s after a failed login
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1, "handle_exit": False}, daemon=True)
    thread.start()
    yield "127.0.0.1", port
    server.close_all()
    thread.join(5)


def login(address: tuple[str, int], made: Any) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect(address[0], address[1], timeout=10)
    user, password = fileserver.ftp_credentials(made.token)
    ftp.login(user, password)
    return ftp


def test_ftp_upload_is_stored_once_and_the_slot_exposes_nothing_else(ftpd, settings):
    made = slot("ftp")
    url = fileserver.slot_url(made)
    user, password = fileserver.ftp_credentials(made.token)
    assert url == f"ftp://{user}:{password}@127.0.0.1:{settings.CSMS_FTP_PORT}/" and len(url) <= 512
    before = media_files()
    log = b"security log line\n" * 20000  # 360 kB over the data connection

    ftp = login(ftpd, made)
    assert ftp.pwd() == "/"
    ftp.cwd("..")  # the virtual root is the top
    assert ftp.pwd() == "/"
    assert ftp.nlst() == []  # its own empty directory: no other slot, nothing of the server
    for outside in ("/etc/passwd", "../../etc/passwd", str(MEDIA)):
        with pytest.raises(ftplib.error_perm):
            ftp.retrbinary(f"RETR {outside}", lambda _: None)
    with pytest.raises(ftplib.error_perm):
        ftp.mkd("sub")
    assert ftp.storbinary("STOR ../../seclog.txt", io.BytesIO(log)).startswith("226")
    assert stored(made) == log
    assert (made.filename, made.size_bytes, made.received_via) == ("seclog.txt", len(log), "ftp")
    with pytest.raises(ftplib.error_perm, match="already holds its file"):
        ftp.storbinary("STOR again.txt", io.BytesIO(b"again"))
    with pytest.raises(ftplib.error_perm):
        ftp.retrbinary("RETR seclog.txt", lambda _: None)  # not even its own upload can be read back
    with pytest.raises(ftplib.error_perm):
        ftp.delete("seclog.txt")
    ftp.quit()
    assert len(media_files()) == len(before) + 1
    # Used: the credentials no longer log in.
    with pytest.raises(ftplib.error_perm, match="530"):
        login(ftpd, made)


def test_ftp_refuses_wrong_expired_and_oversize_with_nothing_stored(ftpd):
    made, expired, small = slot("ftp"), slot("ftp", expired=True), slot("ftp", max_bytes=1000)
    http_slot = slot("http")
    before = media_files()
    user, password = fileserver.ftp_credentials(made.token)
    for bad_user, bad_password in (
        (user, password[:-1] + ("A" if password[-1] != "A" else "B")),
        (*fileserver.ftp_credentials(expired.token),),
        (*fileserver.ftp_credentials(http_slot.token),),
        ("anonymous", "guest@"),
    ):
        ftp = ftplib.FTP()
        ftp.connect(ftpd[0], ftpd[1], timeout=10)
        with pytest.raises(ftplib.error_perm, match="530"):
            ftp.login(bad_user, bad_password)
        ftp.close()

    ftp = login(ftpd, small)
    with pytest.raises((ftplib.error_perm, ftplib.error_temp, OSError)):
        ftp.storbinary("STOR big.log", io.BytesIO(b"x" * 300_000))
    ftp.close()
    for refused in (made, expired, small, http_slot):
        assert stored(refused) is None
    assert media_files() == before
    # The small slot still takes a file within its limit.
    ftp = login(ftpd, small)
    assert ftp.storbinary("STOR ok.log", io.BytesIO(b"o" * 1000)).startswith("226")
    ftp.quit()
    assert stored(small) == b"o" * 1000


def test_the_management_command_serves_ftp_uploads_into_storage(transactional_db, settings):
    # As make run and docker-compose start it: its own process, on the (test) database and the shared media.
    settings.MEDIA_ROOT = MEDIA
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": conftest.test_database_url(),
        "CSMS_MEDIA_ROOT": str(MEDIA),
        "CSMS_FTP_PASSIVE_PORTS": "",
        "CSMS_DB_CONN_MAX_AGE": "0",
    }
    env.pop("CSMS_TEST_DB_NAME", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fileserver_ftp", "--host", "127.0.0.1", "--port", str(port)],
        cwd=conftest.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().decode().strip() == f"FTP upload server on 127.0.0.1:{port}"
        made = slot("ftp")
        ftp = login(("127.0.0.1", port), made)
        assert ftp.storbinary("STOR diag.tar.gz", io.BytesIO(b"\x1f\x8b" + b"d" * 5000)).startswith("226")
        ftp.quit()
        assert stored(made) == b"\x1f\x8b" + b"d" * 5000
    finally:
        process.terminate()
        process.wait(10)


def test_getlog_to_an_ftp_station_gives_an_ftp_url_whose_upload_is_attached(ftpd, settings):
    settings.CSMS_FTP_PORT, settings.CSMS_FTP_PUBLIC_URL = ftpd[1], ""
    station = online_without_socket("CS-FTP")
    StationFileTransfer.objects.create(station=station, protocol="ftp")
    request = logs.log_request_send(station=station, log_type="SecurityLog")
    assert request.command is not None and request.slot is not None
    location = urlsplit(request.command.request["log"]["remoteLocation"])
    assert (location.scheme, location.hostname, location.port, location.path) == ("ftp", "127.0.0.1", ftpd[1], "/")
    ftp = ftplib.FTP()
    ftp.connect(location.hostname, location.port, timeout=10)
    ftp.login(location.username or "", location.password or "")
    assert ftp.storbinary("STOR security.log", io.BytesIO(b"sec" * 1000)).startswith("226")
    ftp.quit()
    assert stored(request.slot) == b"sec" * 1000
    shown = LogRequestSerializer(LogRequest.objects.select_related("station", "slot").get(pk=request.pk)).data
    assert (shown["protocol"], shown["file_name"], shown["download_url"]) == (
        "ftp",
        "security.log",
        f"/api/v1/log-requests/{request.pk}/download/",
    )
