"""Simulated stations for firmware rollouts: they answer UpdateFirmware and report the 2.0.1 status flow."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.ocpp_client import BOOT

# Every other 2.0.1 status is covered by tests/firmware/test_rollouts.py on the ASGI app.
SUCCESS_FLOW = ["Downloading", "Downloaded", "Installing"]


@dataclass
class Fleet:
    """What the simulated stations saw: UpdateFirmware frames per station, events in order, the peak in flight."""

    new_version: str
    outcomes: dict[str, str] = field(default_factory=dict)  # identity -> "ok" | "Rejected" | a failure status
    received: Counter[str] = field(default_factory=Counter)
    events: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    release: asyncio.Event | None = None  # when set, stations hold their statuses until it is set
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    done: set[str] = field(default_factory=set)

    def _final(self, identity: str) -> None:
        self.in_flight -= 1
        self.events.append(("final", identity))
        self.done.add(identity)


async def _poll(st: Any, timeout_s: float) -> list[Any]:
    """The next frame within ``timeout_s`` (TimeoutError otherwise). On the ASGI app a receive timeout would cancel
    the consumer (asgiref's communicator), so it first waits for output without consuming it."""
    communicator = getattr(st, "communicator", None)
    if communicator is not None:
        if await communicator.receive_nothing(timeout=timeout_s):
            raise TimeoutError
        return await st.recv()
    return await st.recv(timeout=timeout_s)


async def firmware_station(server: Any, identity: str, fleet: Fleet) -> None:
    """Connect, boot, then answer every UpdateFirmware: Accepted and the status flow, or the failure asked for."""
    async with server.station(identity) as st:
        assert (await st.boot())[0] == 3
        while not fleet.stop.is_set():
            try:
                frame = st.incoming_calls.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    frame = await _poll(st, 0.2)
                except TimeoutError:
                    continue
            if frame[0] != 2 or frame[2] != "UpdateFirmware":
                continue
            fleet.received[identity] += 1
            fleet.events.append(("recv", identity))
            fleet.in_flight += 1
            fleet.peak_in_flight = max(fleet.peak_in_flight, fleet.in_flight)
            request_id = frame[3]["requestId"]
            outcome = fleet.outcomes.get(identity, "ok")
            if outcome == "Rejected":
                fleet._final(identity)
                await st.send_raw(json.dumps([3, frame[1], {"status": "Rejected"}]))
                continue
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
            if fleet.release is not None:
                await fleet.release.wait()
            flow = SUCCESS_FLOW[:1] + [outcome] if outcome != "ok" else SUCCESS_FLOW
            for status in flow:
                if status == outcome:
                    fleet._final(identity)
                reply = await st.call("FirmwareStatusNotification", {"status": status, "requestId": request_id})
                assert reply[0] == 3, reply
            if outcome == "ok":
                boot = {**BOOT, "reason": "FirmwareUpdate"}
                boot["chargingStation"] = {**BOOT["chargingStation"], "firmwareVersion": fleet.new_version}
                assert (await st.boot(boot))[0] == 3
                fleet._final(identity)
                reply = await st.call("FirmwareStatusNotification", {"status": "Installed", "requestId": request_id})
                assert reply[0] == 3, reply


def waves_in_order(fleet: Fleet, waves: list[list[str]]) -> bool:
    """No station of a wave got its UpdateFirmware before every station of the wave before had finished."""
    position = {event: i for i, event in enumerate(fleet.events)}
    for earlier, later in zip(waves, waves[1:], strict=False):
        last_final = max(position[("final", s)] for s in earlier)
        if any(position[("recv", s)] < last_final for s in later):
            return False
    return True
