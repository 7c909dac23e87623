"""Rollouts in the embedded eager mode (jobs run in process, as ``make run`` without Redis): simulated stations on
the ASGI app, every FirmwareStatusNotification status over the wire, cancel, a status for a cancelled rollout,
AcceptedCanceled, halting, the maintenance window, retries, the version confirmed by BootNotification, the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from firmware import rollouts
from firmware.models import (
    FirmwareRollout,
    FirmwareStatus,
    FirmwareStatusReport,
    FirmwareUpdate,
    RolloutState,
    RolloutStation,
    TargetState,
)
from stations.commands import command_send
from stations.models import BootRecord, ChargingStation, Command
from tests.conftest import AsgiServer, in_thread, wait_until_async
from tests.firmware.factories import signed_image
from tests.firmware.sim import Fleet, firmware_station, waves_in_order
from tests.ocpp_client import run
from tests.stations.helpers import wait_online


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def _stations(n: int, prefix: str = "FW") -> list[ChargingStation]:
    return [ChargingStation.objects.create(identity=f"{prefix}-{i:02d}") for i in range(1, n + 1)]


@pytest.mark.timeout(300)  # 20 stations on a shared 2-core machine: generous, never a speed assertion
def test_eager_rollout_of_20_stations_in_waves_of_5_with_two_failures(asgi_server: AsgiServer) -> None:
    stations = _stations(20)
    identities = [s.identity for s in stations]
    image = signed_image("2.0.0")
    fleet = Fleet(new_version="2.0.0", outcomes={"FW-04": "InstallationFailed", "FW-18": "Rejected"})

    async def scenario() -> int:
        tasks = [asyncio.create_task(firmware_station(asgi_server, i, fleet)) for i in identities]
        for identity in identities:
            await wait_online(identity)
        rollout = await in_thread(
            lambda: rollouts.rollout_create(firmware=image, stations=stations, wave_size=5, max_concurrent=2).pk
        )
        # No beat in eager mode: each final status nudges the rollout on.
        done = await wait_until_async(
            lambda: FirmwareRollout.objects.filter(pk=rollout, state=RolloutState.COMPLETED).exists(), timeout_s=200
        )
        fleet.stop.set()
        await asyncio.gather(*tasks)
        assert done
        return rollout

    rollout = FirmwareRollout.objects.get(pk=run(scenario()))
    states = dict(rollout.stations.values_list("station__identity", "state"))
    assert states == {i: TargetState.INSTALLED for i in identities} | {
        "FW-04": TargetState.INSTALLATION_FAILED,
        "FW-18": TargetState.REJECTED,
    }
    summary = rollouts.rollout_summary(rollout)
    assert (summary["installed"], summary["confirmed"], summary["failed"], summary["percent_done"]) == (18, 18, 2, 100)
    assert fleet.received == {i: 1 for i in identities}
    assert Command.objects.filter(action="UpdateFirmware").count() == 20
    assert fleet.peak_in_flight <= 2
    assert waves_in_order(fleet, [identities[i : i + 5] for i in range(0, 20, 5)])
    request = Command.objects.filter(action="UpdateFirmware", station__identity="FW-01").get().request
    assert request["firmware"]["signature"] == image.signature
    assert request["firmware"]["location"].startswith("http://127.0.0.1:8000/fw/")
    assert request["requestId"] == FirmwareUpdate.objects.get(station__identity="FW-01").request_id


NON_FINAL = [
    "DownloadScheduled",
    "Downloading",
    "DownloadPaused",
    "Downloaded",
    "SignatureVerified",
    "InstallScheduled",
    "Installing",
    "InstallRebooting",
    "Idle",
]
FINAL = ["InvalidSignature", "DownloadFailed", "InstallationFailed", "InstallVerificationFailed", "Installed"]


def test_every_firmware_status_over_the_wire_drives_the_station_state(asgi_server: AsgiServer) -> None:
    (station,) = _stations(1)
    image = signed_image()
    assert set(NON_FINAL + FINAL) == set(FirmwareStatus.values)

    async def scenario() -> list[str]:
        seen = []
        async with asgi_server.station(station.identity) as st:
            assert (await st.boot())[0] == 3
            rollout = await in_thread(lambda: rollouts.rollout_create(firmware=image, stations=[station]).pk)
            call = await st.recv()
            assert call[2] == "UpdateFirmware"
            await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
            request_id = call[3]["requestId"]
            for status in NON_FINAL + FINAL:
                reply = await st.call("FirmwareStatusNotification", {"status": status, "requestId": request_id})
                assert reply[0] == 3 and reply[2] == {}
                seen.append(await in_thread(lambda: RolloutStation.objects.get(rollout_id=rollout).state))
        return seen

    seen = run(scenario())
    # Each status is the station's state until the first final one, which is kept: nothing counts twice.
    assert seen == NON_FINAL + ["InvalidSignature"] * len(FINAL)
    assert list(FirmwareStatusReport.objects.order_by("pk").values_list("status", flat=True)) == NON_FINAL + FINAL
    kept = FirmwareStatusReport.objects.filter(status="Installed").get()
    assert kept.outcome.endswith("station already InvalidSignature, kept")
    rollout = FirmwareRollout.objects.get()
    assert rollout.state == RolloutState.COMPLETED
    assert rollouts.rollout_summary(rollout)["failed"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status", ["DownloadFailed", "InstallationFailed", "InstallVerificationFailed", "InvalidSignature"]
)
def test_each_failure_status_counts_as_one_failure(status: str) -> None:
    (station,) = _stations(1)
    rollout = rollouts.rollout_create(firmware=signed_image(), stations=[station])
    rollouts.rollout_advance(rollout_id=rollout.pk)  # what beat (or the commit's nudge) does
    target = rollout.stations.get()
    # The station is offline: the first attempt is not answered; a status still reaches its UpdateFirmware.
    assert target.attempts == 1 and target.update is not None
    RolloutStation.objects.filter(pk=target.pk).update(state=TargetState.SENT)
    rollouts.firmware_status_record(station_id=station.pk, status=status, request_id=target.update.request_id)
    rollouts.firmware_status_record(station_id=station.pk, status=status, request_id=target.update.request_id)
    rollouts.rollout_advance(rollout_id=rollout.pk)
    rollout.refresh_from_db()
    summary = rollouts.rollout_summary(rollout)
    assert (summary["failed"], summary["installed"], summary["total"]) == (1, 0, 1)
    assert rollout.state == RolloutState.COMPLETED


def test_cancel_stops_unsent_stations_and_later_statuses_are_recorded_once(asgi_server: AsgiServer) -> None:
    stations = _stations(4)
    image = signed_image("3.0")

    async def scenario() -> None:
        async with asgi_server.station("FW-01") as one, asgi_server.station("FW-02") as two:
            assert (await one.boot())[0] == 3 and (await two.boot())[0] == 3
            rollout = await in_thread(
                lambda: rollouts.rollout_create(firmware=image, stations=stations, wave_size=2, max_concurrent=2)
            )
            calls = [await one.recv(), await two.recv()]
            for st, call in zip((one, two), calls, strict=True):
                await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
            await wait_until_async(lambda: FirmwareUpdate.objects.filter(answer_status="Accepted").count() == 2)
            stopped = await in_thread(lambda: rollouts.rollout_cancel(rollout=rollout))
            assert stopped == 2
            # A status for the cancelled rollout: recorded on its station, counted once, nobody else is sent.
            for status in ("Downloading", "Installed", "Installed"):
                reply = await one.call(
                    "FirmwareStatusNotification", {"status": status, "requestId": calls[0][3]["requestId"]}
                )
                assert reply[0] == 3
            reply = await one.call("FirmwareStatusNotification", {"status": "Downloading", "requestId": 999})
            assert reply[0] == 3
            # The sent station 2 is superseded by a new UpdateFirmware (any door): AcceptedCanceled.
            newer = await in_thread(
                lambda: command_send(station=stations[1], action="UpdateFirmware", payload=calls[1][3]).pk
            )
            call = await two.recv()
            assert call[3]["requestId"] == calls[1][3]["requestId"] + 1
            await two.send_raw(json.dumps([3, call[1], {"status": "AcceptedCanceled"}]))
            assert await wait_until_async(lambda: Command.objects.get(pk=newer).state == "answered")
            await in_thread(lambda: rollouts.rollout_advance(rollout_id=rollout.pk))

    run(scenario())
    rollout = FirmwareRollout.objects.get()
    assert rollout.state == RolloutState.CANCELLED
    states = dict(rollout.stations.values_list("station__identity", "state"))
    assert states == {"FW-01": "Installed", "FW-02": "cancelled", "FW-03": "cancelled", "FW-04": "cancelled"}
    assert "superseded by UpdateFirmware requestId 2" in rollout.stations.get(station__identity="FW-02").detail
    summary = rollouts.rollout_summary(rollout)
    assert (summary["installed"], summary["cancelled"], summary["failed"], summary["pending"]) == (1, 3, 0, 0)
    assert Command.objects.filter(action="UpdateFirmware", station__identity__in=["FW-03", "FW-04"]).count() == 0
    unknown = FirmwareStatusReport.objects.get(request_id=999)
    assert unknown.update is None and unknown.outcome == "no UpdateFirmware with this requestId: stored only"
    assert FirmwareStatusReport.objects.filter(station__identity="FW-01", status="Installed").count() == 2


@pytest.mark.django_db
def test_boot_with_the_new_version_confirms_an_installed_station() -> None:
    one, two = _stations(2)
    rollout = rollouts.rollout_create(firmware=signed_image("4.0"), stations=[one, two])
    rollout.stations.update(state=TargetState.INSTALLED, sent_at=timezone.now() - dt.timedelta(minutes=5))
    BootRecord.objects.create(station=one, reason="FirmwareUpdate", vendor_name="V", model="M", firmware_version="4.0")
    BootRecord.objects.create(station=two, reason="FirmwareUpdate", vendor_name="V", model="M", firmware_version="3.9")
    rollouts.rollouts_advance()
    confirmed = {
        t.station.identity: t.version_confirmed_at is not None for t in rollout.stations.select_related("station")
    }
    assert confirmed == {"FW-01": True, "FW-02": False}


@pytest.mark.django_db
def test_more_than_the_share_of_a_wave_failing_halts_the_rollout() -> None:
    stations = _stations(4)  # offline: every attempt fails
    rollout = rollouts.rollout_create(
        firmware=signed_image(), stations=stations, wave_size=2, halt_failure_share=0.4, max_attempts=1
    )
    rollouts.rollout_advance(rollout_id=rollout.pk)  # sends wave 1: both offline, no attempt left
    rollouts.rollout_advance(rollout_id=rollout.pk)  # wave 1 over: 2 of 2 failed
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.HALTED
    assert rollout.halt_reason == "wave 1: 2 of 2 stations failed (more than 40%)"
    assert list(rollout.stations.values_list("state", flat=True)) == ["failed", "failed", "pending", "pending"]
    assert Command.objects.filter(action="UpdateFirmware").count() == 2


@pytest.mark.django_db
def test_offline_stations_are_retried_per_policy_then_fail() -> None:
    (station,) = _stations(1)
    rollout = rollouts.rollout_create(firmware=signed_image(), stations=[station], max_attempts=2, retry_interval_s=60)
    rollouts.rollout_advance(rollout_id=rollout.pk)
    target = rollout.stations.get()
    assert (target.state, target.attempts) == (TargetState.PENDING, 1)
    rollouts.rollout_advance(rollout_id=rollout.pk)  # not due yet
    assert rollout.stations.get().attempts == 1
    rollouts.rollout_advance(rollout_id=rollout.pk, now=timezone.now() + dt.timedelta(seconds=61))
    target = rollout.stations.get()
    assert (target.state, target.attempts) == (TargetState.FAILED, 2)
    assert target.detail == "attempt 2: station not connected; no attempt left"
    assert Command.objects.filter(action="UpdateFirmware").count() == 2


@pytest.mark.django_db
def test_nothing_is_sent_outside_the_maintenance_window() -> None:
    (station,) = _stations(1)
    now = timezone.now()
    start, end = (now + dt.timedelta(hours=1)).time(), (now + dt.timedelta(hours=2)).time()
    rollout = rollouts.rollout_create(firmware=signed_image(), stations=[station], window_start=start, window_end=end)
    rollouts.rollout_advance(rollout_id=rollout.pk, now=now)
    assert not Command.objects.exists()
    rollouts.rollout_advance(rollout_id=rollout.pk, now=now + dt.timedelta(hours=1, minutes=30))
    assert Command.objects.filter(action="UpdateFirmware").count() == 1


@pytest.mark.django_db
def test_api_creates_lists_and_cancels_a_rollout(admin_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    _stations(3, prefix="API")
    image = signed_image()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/api/v1/firmware-rollouts/",
            {"firmware": image.pk, "stations": ["API-01", "API-02", "API-03"], "wave_size": 2, "max_concurrent": 1},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert [(s["identity"], s["state"]) for s in body["stations"]] == [
        ("API-01", "pending"),
        ("API-02", "pending"),
        ("API-03", "pending"),
    ]
    assert body["summary"]["total"] == 3 and body["summary"]["pending"] == 3
    detail = admin_client.get(f"/api/v1/firmware-rollouts/{body['id']}/").json()
    assert [s["attempts"] for s in detail["stations"]] == [1, 0, 0]  # max_concurrent 1; offline: retried later
    assert detail["stations"][0]["detail"] == "attempt 1: station not connected; retried"
    cancelled = admin_client.post(f"/api/v1/firmware-rollouts/{body['id']}/cancel/").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["summary"]["cancelled"] == 3
    listed = admin_client.get("/api/v1/firmware-rollouts/").json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    unknown = admin_client.post(
        "/api/v1/firmware-rollouts/", {"firmware": image.pk, "stations": ["NOPE"]}, content_type="application/json"
    )
    assert unknown.status_code == 400 and "unknown stations: NOPE" in unknown.json()["stations"]
    by_filter = admin_client.post(
        "/api/v1/firmware-rollouts/", {"firmware": image.pk, "model": "no-such-model"}, content_type="application/json"
    )
    assert by_filter.status_code == 400 and "no station matches" in by_filter.json()["detail"]
