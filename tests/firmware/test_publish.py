"""PublishFirmware / UnpublishFirmware to a local controller and its PublishFirmwareStatusNotifications, on the wire."""

from __future__ import annotations

import json
from typing import Any

import pytest

from firmware.models import FirmwarePublication
from firmware.publications import firmware_publish, firmware_unpublish
from stations.models import ChargingStation
from tests.conftest import AsgiServer, in_thread, wait_until_async
from tests.firmware.factories import signed_image
from tests.ocpp_client import run


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def test_publish_status_notifications_and_unpublish(asgi_server: AsgiServer) -> None:
    station = ChargingStation.objects.create(identity="LC-1")
    image = signed_image("6.0")

    async def scenario() -> list[Any]:
        async with asgi_server.station("LC-1") as st:
            assert (await st.boot())[0] == 3
            publication = await in_thread(lambda: firmware_publish(station=station, firmware=image, retries=2).pk)
            call = await st.recv()
            assert call[2] == "PublishFirmware"
            await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
            replies = []
            request_id = call[3]["requestId"]
            for status in ("Downloading", "Downloaded", "ChecksumVerified"):
                replies.append(
                    await st.call("PublishFirmwareStatusNotification", {"status": status, "requestId": request_id})
                )
            published = {
                "status": "Published",
                "requestId": request_id,
                "location": ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"],
            }
            replies.append(await st.call("PublishFirmwareStatusNotification", published))
            # A status for a requestId the CSMS never sent changes nothing (answered, in the message log).
            replies.append(
                await st.call("PublishFirmwareStatusNotification", {"status": "PublishFailed", "requestId": 77})
            )
            await in_thread(lambda: firmware_unpublish(station=station, firmware=image))
            call2 = await st.recv()
            assert call2[2] == "UnpublishFirmware" and call2[3] == {"checksum": image.md5_hex}
            await st.send_raw(json.dumps([3, call2[1], {"status": "Unpublished"}]))
            assert await wait_until_async(
                lambda: FirmwarePublication.objects.get(pk=publication).unpublish_status == "Unpublished"
            )
            return [call[3], replies]

    request, replies = run(scenario())
    assert [r[0] for r in replies] == [3, 3, 3, 3, 3]
    assert request["checksum"] == image.md5_hex
    assert request["location"].startswith("http://127.0.0.1:8000/fw/") and len(request["location"]) <= 512
    assert request["retries"] == 2
    publication = FirmwarePublication.objects.get()
    assert (publication.request_id, publication.firmware, publication.answer_status) == (
        request["requestId"],
        image,
        "Accepted",
    )
    assert publication.status == "Published"
    assert publication.locations == ["http://lc.local/fw.bin", "ftp://lc.local/fw.bin"]
    assert publication.unpublish_status == "Unpublished"
