"""Log requests in process: which protocol a station gets, the GetLog answers, LogStatusNotification for unknown
requests, the beat job, the API's and the page's permissions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from csms.roles import roles_ensure
from devicemodel.models import DeviceVariable, VariableAttribute
from firmware import fileserver, logs
from firmware.models import LogRequest, LogRequestState, StationFileTransfer, UploadSlot
from stations.commands import command_finish
from stations.models import ChargingStation, Command, CommandState
from tests.firmware.helpers import MEDIA
from tests.stations.helpers import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    settings.MEDIA_ROOT = MEDIA


def online(identity: str = "CS-1") -> ChargingStation:
    # Online on a channel nobody reads: commands are recorded and dispatched, the test plays the answer.
    return ChargingStation.objects.create(identity=identity, is_online=True, channel_name="test.nobody")


def cmd(request: LogRequest) -> Command:
    assert request.command is not None
    return request.command


def slot_of(request: LogRequest) -> UploadSlot:
    assert request.slot is not None
    return request.slot


def protocols_variable(station: ChargingStation, value: str) -> None:
    variable = DeviceVariable.objects.create(
        station=station, component_name="OCPPCommCtrlr", name="FileTransferProtocols", updated_at=timezone.now()
    )
    VariableAttribute.objects.create(variable=variable, value=value, updated_at=timezone.now())


@pytest.mark.parametrize(
    ("listed", "choice", "expected"),
    [
        (None, None, "http"),
        ("FTP,SFTP", None, "ftp"),
        ("FTP", None, "ftp"),
        ("FTP,HTTPS", None, "http"),
        ("HTTP,FTP", None, "http"),
        ("HTTP", "ftp", "ftp"),
        ("FTP", "http", "http"),
        ("FTP", "auto", "ftp"),
    ],
)
def test_station_gets_http_unless_only_ftp_is_listed_or_the_operator_says(listed, choice, expected, settings):
    settings.CSMS_FILE_SERVER_BASE_URL = "https://files.example.com"
    settings.CSMS_FTP_PUBLIC_URL = ""
    settings.CSMS_FTP_PORT = 2121
    station = online()
    if listed:
        protocols_variable(station, listed)
    if choice:
        StationFileTransfer.objects.create(station=station, protocol=choice)
    request = logs.log_request_send(station=station)
    location = cmd(request).request["log"]["remoteLocation"]
    assert request.protocol == expected and request.remote_location == location and len(location) <= 512
    token = slot_of(request).token
    if expected == "ftp":
        user, password = fileserver.ftp_credentials(token)
        assert location == f"ftp://{user}:{password}@files.example.com:2121/"
    else:
        assert location == f"https://files.example.com/files/upload/{token}/"


def test_slot_outlives_the_stations_retries(settings):
    settings.CSMS_UPLOAD_SLOT_TTL_S = 3600
    before = timezone.now()
    request = logs.log_request_send(station=online(), retries=3, retry_interval_s=600)
    expires = slot_of(request).expires_at
    assert before + timedelta(seconds=3600 + 1800) <= expires <= timezone.now() + timedelta(seconds=3600 + 1800)
    assert slot_of(request).max_bytes == settings.CSMS_UPLOAD_MAX_BYTES


def test_getlog_answers_move_the_request_and_accepted_canceled_cancels_the_earlier_upload():
    station = online()
    first = logs.log_request_send(station=station)
    command_finish(command_id=cmd(first).pk, state=CommandState.ANSWERED, response={"status": "Accepted"})
    logs.log_status_record(station_id=station.pk, status="Uploading", request_id=first.request_id)
    second = logs.log_request_send(station=station, log_type="SecurityLog")
    assert (first.request_id, second.request_id) == (1, 2)
    command_finish(
        command_id=cmd(second).pk,
        state=CommandState.ANSWERED,
        response={"status": "AcceptedCanceled", "filename": "sec.log"},
    )
    third = logs.log_request_send(station=station)
    command_finish(command_id=cmd(third).pk, state=CommandState.ANSWERED, response={"status": "Rejected"})
    for r in (first, second, third):
        r.refresh_from_db()
    assert (first.state, second.state, third.state) == ("cancelled", "accepted", "rejected")
    assert (second.station_status, second.station_filename) == ("AcceptedCanceled", "sec.log")
    assert third.completed_at is not None and second.completed_at is None


def test_every_log_status_is_tracked_with_its_time():
    station = online()
    request = logs.log_request_send(station=station)
    expected = {
        "Uploading": "uploading",
        "Idle": "uploading",  # Idle says the station is not uploading now: the state stays
        "UploadFailure": "upload_failed",
        "BadMessage": "upload_failed",
        "PermissionDenied": "upload_failed",
        "NotSupportedOperation": "upload_failed",
        "AcceptedCanceled": "cancelled",
        "Uploaded": "uploaded",
    }
    for status, state in expected.items():
        if status == "Idle":
            logs.log_status_record(station_id=station.pk, status="Uploading", request_id=request.request_id)
        done = logs.log_status_record(station_id=station.pk, status=status, request_id=request.request_id)
        assert done is not None and (done.state, done.last_status) == (state, status), status
    request.refresh_from_db()
    assert [s["status"] for s in request.statuses] == [
        "Uploading",
        "Uploading",
        "Idle",
        "UploadFailure",
        "BadMessage",
        "PermissionDenied",
        "NotSupportedOperation",
        "AcceptedCanceled",
        "Uploaded",
    ]
    assert all(s["at"].endswith("Z") for s in request.statuses)


def test_status_for_unknown_or_no_request_id_is_answered_and_kept(asgi_server, station_factory):
    station_factory("CS-1")
    replies = exchange(
        asgi_server,
        "CS-1",
        [
            json.dumps([2, "a", "LogStatusNotification", {"status": "Uploading", "requestId": 77}]),
            json.dumps([2, "b", "LogStatusNotification", {"status": "Uploaded", "requestId": 77}]),
            json.dumps([2, "c", "LogStatusNotification", {"status": "Idle"}]),
        ],
    )
    assert replies == [[3, "a", {}], [3, "b", {}], [3, "c", {}]]
    unsolicited = LogRequest.objects.get(station__identity="CS-1")
    assert (unsolicited.request_id, unsolicited.state, unsolicited.command, unsolicited.slot) == (
        77,
        "unsolicited",
        None,
        None,
    )
    assert [s["status"] for s in unsolicited.statuses] == ["Uploading", "Uploaded"]
    transfer = StationFileTransfer.objects.get(station__identity="CS-1")
    assert (transfer.last_log_status, transfer.last_log_request_id, transfer.protocol) == ("Idle", None, "auto")


def test_beat_job_ends_requests_that_will_not_complete():
    station = online()
    expired, failed, uploaded, received, fresh = (logs.log_request_send(station=station) for _ in range(5))
    past = timezone.now() - timedelta(seconds=1)
    UploadSlot.objects.filter(log_request__in=[expired, uploaded, received]).update(expires_at=past)
    command_finish(command_id=cmd(failed).pk, state=CommandState.TIMED_OUT)
    logs.log_status_record(station_id=station.pk, status="Uploaded", request_id=uploaded.request_id)
    UploadSlot.objects.filter(log_request=received).update(used_at=timezone.now())  # file in, status to come
    assert logs.log_requests_expire() == 2
    states = dict(LogRequest.objects.values_list("pk", "state"))
    assert [states[r.pk] for r in (expired, failed, uploaded, received, fresh)] == [
        "timed_out",
        "failed",
        "uploaded",
        "requested",
        "requested",
    ]
    assert logs.log_requests_expire() == 0  # idempotent


def test_offline_station_gets_a_failed_request():
    station = ChargingStation.objects.create(identity="CS-OFF")
    request = logs.log_request_send(station=station)
    assert (request.state, cmd(request).state) == (LogRequestState.FAILED, CommandState.OFFLINE)


def role(username: str, group: str | None) -> User:
    roles_ensure()
    user = User.objects.create_user(username, password="pw")
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def with_file(station: ChargingStation, content: bytes) -> LogRequest:
    request = logs.log_request_send(station=station)
    slot = slot_of(request)
    slot.file.save(f"{slot.pk}-diag.log", ContentFile(content), save=False)
    slot.filename, slot.size_bytes, slot.used_at = "diag.log", len(content), timezone.now()
    slot.save()
    return request


def test_api_list_post_and_download_permissions():
    station = online()
    request = with_file(station, b"log body")
    clients = {}
    for name, group in (("op", "operator"), ("bill", "billing"), ("nobody", None)):
        clients[name] = APIClient()
        clients[name].force_authenticate(role(name, group))

    listed = clients["bill"].get("/api/v1/log-requests/?station=CS-1")
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert (row["id"], row["state"], row["file_name"], row["file_size_bytes"]) == (
        request.pk,
        "requested",
        "diag.log",
        8,
    )
    assert row["download_url"] == f"/api/v1/log-requests/{request.pk}/download/"
    assert clients["nobody"].get("/api/v1/log-requests/").status_code == 403
    assert APIClient().get("/api/v1/log-requests/").status_code == 401

    download = clients["op"].get(row["download_url"])
    assert download.status_code == 200 and b"".join(cast(Any, download).streaming_content) == b"log body"
    assert 'filename="CS-1-DiagnosticsLog-1-diag.log"' in download["Content-Disposition"]
    assert clients["bill"].get(row["download_url"]).status_code == 403

    assert clients["bill"].post("/api/v1/log-requests/", {"station": "CS-1"}, format="json").status_code == 403
    created = clients["op"].post(
        "/api/v1/log-requests/",
        {"station": "CS-1", "log_type": "SecurityLog", "latest_timestamp": "2026-12-01T10:00:00Z", "retries": 1},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["request_id"], body["log_type"], body["state"], body["download_url"]) == (
        2,
        "SecurityLog",
        "requested",
        None,
    )
    sent = cmd(LogRequest.objects.get(pk=body["id"]))
    assert sent.action == "GetLog" and sent.created_by is not None and sent.created_by.username == "op"
    assert sent.request["log"]["latestTimestamp"] == "2026-12-01T10:00:00Z" and sent.request["retries"] == 1
    assert clients["op"].post("/api/v1/log-requests/", {"station": "NOPE"}, format="json").status_code == 400
    no_file = clients["op"].get(f"/api/v1/log-requests/{body['id']}/download/")
    assert no_file.status_code == 404


def test_page_lists_requests_and_downloads_for_operators_only():
    station = online()
    request = with_file(station, b"page body")
    operator, billing = Client(), Client()
    operator.force_login(role("op", "operator"))
    billing.force_login(role("bill", "billing"))
    html = operator.get("/log-requests/?station=CS-1").content.decode()
    assert f'href="/log-requests/{request.pk}/file/"' in html and 'data-testid="log-request-form"' in html
    download = operator.get(f"/log-requests/{request.pk}/file/")
    assert download.status_code == 200 and b"".join(cast(Any, download).streaming_content) == b"page body"
    shown = billing.get("/log-requests/").content.decode()
    assert "diag.log" in shown and f"/log-requests/{request.pk}/file/" not in shown
    assert 'data-testid="log-request-form"' not in shown
    assert billing.get(f"/log-requests/{request.pk}/file/").status_code == 404
    # The operator requests a log from the page and sets a station's protocol.
    assert operator.post("/log-requests/new/", {"station": "CS-1", "log_type": "SecurityLog"}).status_code == 302
    assert LogRequest.objects.filter(station=station, log_type="SecurityLog").count() == 1
    assert operator.post("/log-requests/protocol/", {"station": "CS-1", "protocol": "ftp"}).status_code == 302
    assert StationFileTransfer.objects.get(station=station).protocol == "ftp"
    assert billing.post("/log-requests/protocol/", {"station": "CS-1", "protocol": "http"}).status_code == 403


def test_the_timeout_job_is_scheduled_by_beat(settings):
    from csms.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["firmware-log-requests-expire"]
    assert entry == {"task": "firmware.log_requests_expire", "schedule": 60.0}
    station = online()
    request = logs.log_request_send(station=station)
    UploadSlot.objects.filter(log_request=request).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert app.tasks[entry["task"]].apply().get() == 1
    request.refresh_from_db()
    assert request.state == LogRequestState.TIMED_OUT


@pytest.mark.parametrize(
    ("given", "kept"), [("../../etc/passwd", "passwd"), ("..", ""), ("diag log (1).zip", "diag_log_1.zip"), ("", "")]
)
def test_a_stations_file_name_is_made_safe(given, kept):
    assert fileserver.safe_filename(given) == kept
