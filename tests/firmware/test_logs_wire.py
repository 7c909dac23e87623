"""GetLog end to end: live daphne, a real station socket; it uploads its log to the URL it was given and reports
Uploading -> Uploaded; operators download the file, billing may not."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from csms.roles import roles_ensure
from firmware import logs
from firmware.models import LogRequest, LogRequestState
from stations.models import ChargingStation
from tests.conftest import in_thread
from tests.firmware.helpers import MEDIA, media_server, upload
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live


def role_token(username: str, group: str) -> str:
    user = User.objects.create_user(username, password="pw")
    user.groups.add(Group.objects.get(name=group))
    return Token.objects.create(user=user).key


def get(base: str, path: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def until(predicate: Any, timeout_s: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if value := await in_thread(predicate):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_getlog_upload_and_status_notifications_end_to_end(csms_server, station_factory, settings):
    server = media_server(csms_server)
    settings.MEDIA_ROOT = MEDIA
    settings.CSMS_FILE_SERVER_BASE_URL = server.http_url  # what the station is told to reach
    station_factory("CS-LOG")
    roles_ensure()
    operator, billing = role_token("op", "operator"), role_token("bill", "billing")
    content = b"2026-12-01T09:00:00Z INFO boot\n2026-12-01T09:00:01Z WARN temperature\n" * 1000

    async def scenario() -> LogRequest:
        async with RawStation.connect(server.ws_url, "CS-LOG") as st:
            await st.boot()
            await wait_online("CS-LOG")
            station = await in_thread(lambda: ChargingStation.objects.get(identity="CS-LOG"))
            sent = asyncio.create_task(
                in_thread(
                    lambda: logs.log_request_send(
                        station=station,
                        log_type="SecurityLog",
                        oldest_timestamp=datetime(2026, 11, 30, tzinfo=UTC),
                        retries=2,
                        retry_interval_s=30,
                    )
                )
            )
            frame = await st.recv(10)
            assert frame[2] == "GetLog", frame
            request = frame[3]
            location = request["log"]["remoteLocation"]
            assert request["requestId"] == 1 and request["logType"] == "SecurityLog"
            assert request["retries"] == 2 and request["retryInterval"] == 30
            assert request["log"]["oldestTimestamp"] == "2026-11-30T00:00:00Z"
            assert location.startswith(f"{server.http_url}/files/upload/") and len(location) <= 512
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted", "filename": "security.log"}]))
            created = await sent
            await until(lambda: LogRequest.objects.get(pk=created.pk).state == LogRequestState.ACCEPTED)

            assert (await st.call("LogStatusNotification", {"status": "Uploading", "requestId": 1}))[2] == {}
            await until(lambda: LogRequest.objects.get(pk=created.pk).state == LogRequestState.UPLOADING)
            assert await asyncio.to_thread(upload, location + "security.log", "PUT", content) == (200, "stored\n")
            # The station's own retry of the same upload is refused: the file is kept once.
            assert (await asyncio.to_thread(upload, location, "PUT", b"again"))[0] == 409
            assert (await st.call("LogStatusNotification", {"status": "Uploaded", "requestId": 1}))[2] == {}
            return await until(
                lambda: LogRequest.objects.select_related("slot").filter(pk=created.pk, state="uploaded").first()
            )

    done = run(scenario())
    assert (done.station_status, done.station_filename, done.last_status) == ("Accepted", "security.log", "Uploaded")
    assert [s["status"] for s in done.statuses] == ["Uploading", "Uploaded"]
    assert done.completed_at is not None and done.slot.filename == "security.log"
    assert done.command.request["log"]["remoteLocation"] == done.remote_location

    code, body = get(server.http_url, f"/api/v1/log-requests/{done.pk}/", operator)
    shown = json.loads(body)
    assert code == 200 and shown["state"] == "uploaded" and shown["file_size_bytes"] == len(content)
    assert [s["status"] for s in shown["statuses"]] == ["Uploading", "Uploaded"]
    assert shown["download_url"] == f"/api/v1/log-requests/{done.pk}/download/"
    assert get(server.http_url, shown["download_url"], operator) == (200, content)
    # Billing reads the request's state, never the log file.
    code, body = get(server.http_url, f"/api/v1/log-requests/{done.pk}/", billing)
    assert code == 200 and json.loads(body)["state"] == "uploaded"
    assert get(server.http_url, shown["download_url"], billing)[0] == 403
