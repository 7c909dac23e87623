"""Station scenarios shared by the wire-level test modules (live servers or the ASGI app in process)."""

from __future__ import annotations

from typing import Any

from stations.models import ChargingStation
from tests.conftest import wait_until_async
from tests.ocpp_client import run


def exchange(server: Any, identity: str, frames: list[str], boot: bool = True) -> list[list[Any]]:
    """Send ``frames`` one by one on one connection of ``identity`` (a ``LiveServer`` or an ``AsgiServer``) and
    return their replies; the connection must still answer a Heartbeat afterwards."""

    async def scenario() -> list[list[Any]]:
        async with server.station(identity) as st:
            if boot:
                assert (await st.boot())[0] == 3
            replies = [await st.call_raw(f) for f in frames]
            # The connection survives every error: a Heartbeat still works afterwards.
            after = await st.call("Heartbeat", {}, message_id="alive")
            assert after[0] == 3 and after[1] == "alive"
            return replies

    return run(scenario())


async def wait_online(identity: str, timeout_s: float = 10) -> None:
    """Until the consumer has stored its channel name (commands need no BootNotification)."""

    def online() -> bool:
        return ChargingStation.objects.filter(identity=identity, is_online=True).exclude(channel_name="").exists()

    if not await wait_until_async(online, timeout_s=timeout_s):
        raise AssertionError(f"{identity} did not come online")
