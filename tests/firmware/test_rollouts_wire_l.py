"""Conformance cases of block L at the wire (TC_L_11, TC_L_13, TC_L_18): a rollout to one station on the ASGI app
in process (embedded eager mode), while a transaction runs, with connectors reported Unavailable, and of an
unsigned image."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from firmware import rollouts
from firmware.images import firmware_image_upload
from firmware.models import FirmwareImage, FirmwareStatusReport, RolloutStation
from stations.models import ChargingStation, Connector, StationEvent
from tests.conftest import AsgiServer, in_thread
from tests.firmware.factories import signed_image
from tests.ocpp_client import AsgiStation, run
from tests.smartcharging.test_profiles_wire import event
from transactions.selectors import active_transactions

NOW = "2026-12-01T10:00:00Z"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


async def update_firmware(st: AsgiStation, image: FirmwareImage, station: ChargingStation) -> tuple[int, list[Any]]:
    """Start a rollout of ``image`` to ``station``; answer its UpdateFirmware Accepted."""
    rollout = await in_thread(lambda: rollouts.rollout_create(firmware=image, stations=[station]).pk)
    call = await st.recv(10)
    assert call[2] == "UpdateFirmware", call
    await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
    return rollout, call


async def status(st: AsgiStation, rollout: int, value: str, request_id: int) -> str:
    reply = await st.call("FirmwareStatusNotification", {"status": value, "requestId": request_id})
    assert reply[0] == 3 and reply[2] == {}, reply
    return await in_thread(lambda: RolloutStation.objects.get(rollout_id=rollout).state)


def test_a_firmware_update_during_a_transaction_is_sent_and_answered_and_the_session_runs_on(
    asgi_server: AsgiServer,
) -> None:
    station = ChargingStation.objects.create(identity="FW-01")
    image = signed_image()

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station(station.identity) as st:
            assert (await st.boot())[0] == 3
            assert (await st.call("TransactionEvent", event("Started", 0)))[0] == 3
            rollout, call = await update_firmware(st, image, station)
            request_id = call[3]["requestId"]
            out["states"] = [await status(st, rollout, s, request_id) for s in ("Downloading", "Downloaded")]
            # The session goes on while the firmware waits: its events are answered as usual.
            updated = event("Updated", 1) | {"triggerReason": "MeterValuePeriodic"}
            assert (await st.call("TransactionEvent", updated))[2] == {}
            out["during"] = await in_thread(
                lambda: list(active_transactions(station_id=station.pk).values_list("transaction_id", flat=True))
            )
            assert (await st.call("TransactionEvent", event("Ended", 2, stoppedReason="Local")))[0] == 3
            out["states"] += [await status(st, rollout, s, request_id) for s in ("Installing", "Installed")]
        return out

    out = run(scenario())
    assert out["during"] == ["TX-1"]
    assert out["states"] == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert list(FirmwareStatusReport.objects.order_by("pk").values_list("status", flat=True)) == [
        "Downloading", "Downloaded", "Installing", "Installed"
    ]  # fmt: skip
    assert not active_transactions(station_id=station.pk).exists()


def test_connectors_reported_unavailable_while_the_update_is_scheduled_are_stored_and_the_rollout_follows(
    asgi_server: AsgiServer,
) -> None:
    station = ChargingStation.objects.create(identity="FW-01")
    image = signed_image()
    unavailable = {"eventId": 1, "timestamp": NOW, "trigger": "Delta", "actualValue": "Unavailable",
                   "eventNotificationType": "HardWiredNotification",
                   "component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
                   "variable": {"name": "AvailabilityState"}}  # fmt: skip

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station(station.identity) as st:
            assert (await st.boot())[0] == 3
            assert (await st.call("TransactionEvent", event("Started", 0)))[0] == 3
            rollout, call = await update_firmware(st, image, station)
            request_id = call[3]["requestId"]
            out["states"] = [await status(st, rollout, "DownloadScheduled", request_id)]
            # AllowNewSessionsPendingFirmwareUpdate false: the free connector goes Unavailable (both ways).
            notification = {"timestamp": NOW, "connectorStatus": "Unavailable", "evseId": 2, "connectorId": 1}
            assert (await st.call("StatusNotification", notification))[2] == {}
            notify = {"generatedAt": NOW, "seqNo": 0, "eventData": [unavailable]}
            assert (await st.call("NotifyEvent", notify))[2] == {}
            out["states"] += [await status(st, rollout, s, request_id) for s in ("Downloaded", "InstallScheduled")]
            out["during"] = await in_thread(
                lambda: list(active_transactions(station_id=station.pk).values_list("transaction_id", flat=True))
            )
        return out

    out = run(scenario())
    assert out["states"] == ["DownloadScheduled", "Downloaded", "InstallScheduled"]
    assert out["during"] == ["TX-1"]
    connector = Connector.objects.get(evse__station=station, evse__evse_id=2, connector_id=1)
    assert connector.status == "Unavailable"
    stored = StationEvent.objects.get(station=station)
    assert (stored.event_id, stored.trigger, stored.actual_value) == (1, "Delta", "Unavailable")
    assert RolloutStation.objects.get().state == "InstallScheduled"


def test_an_unsigned_image_is_rolled_out_without_signing_certificate_and_signature(asgi_server: AsgiServer) -> None:
    station = ChargingStation.objects.create(identity="FW-01")
    image = firmware_image_upload(file=io.BytesIO(b"unsigned " * 100), name="fw-3.0.0.bin", version="3.0.0")
    assert (image.signing_certificate, image.signature) == ("", "")

    async def scenario() -> list[Any]:
        async with asgi_server.station(station.identity) as st:
            assert (await st.boot())[0] == 3
            rollout, call = await update_firmware(st, image, station)
            assert await status(st, rollout, "Installed", call[3]["requestId"]) == "Installed"
            return call

    call = run(scenario())
    request = call[3]
    assert sorted(request) == ["firmware", "requestId"]
    assert sorted(request["firmware"]) == ["location", "retrieveDateTime"]
    assert request["firmware"]["location"].startswith("http://127.0.0.1:8000/fw/")
    update = RolloutStation.objects.get().update
    assert update is not None and request["requestId"] == update.request_id
