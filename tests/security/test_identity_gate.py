"""The per-identity handshake gate: at most two handshakes of one identity in the database threads at a time."""

from __future__ import annotations

import asyncio

from stations.consumers import _IdentityGate
from tests.ocpp_client import run


def test_at_most_two_handshakes_per_identity_and_nothing_left_behind():
    async def scenario() -> tuple[int, int, int]:
        gate = _IdentityGate()
        inside = {"CS-1": 0, "CS-2": 0}
        peak = {"CS-1": 0, "CS-2": 0}

        async def handshake(identity: str) -> None:
            async with gate.hold(identity):
                inside[identity] += 1
                peak[identity] = max(peak[identity], inside[identity])
                await asyncio.sleep(0.001)
                inside[identity] -= 1

        await asyncio.gather(*(handshake("CS-1") for _ in range(50)), handshake("CS-2"))
        return peak["CS-1"], peak["CS-2"], len(gate._gates)

    assert run(scenario()) == (2, 1, 0)  # not asyncio.run: a Playwright test may leave a loop on this thread
