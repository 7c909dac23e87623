"""A wrong-password flood against one station (real sockets, a live daphne): other stations are answered throughout,
the flooded station's correct password still gets in from its own address, refused attempts are recorded as a few
aggregated security events, and a legacy PBKDF2 hash still verifies over the wire and is upgraded.

The flood comes from 127.0.0.2 (a loopback address of its own, so that "another address" is real without leaving
the machine); the legitimate stations connect from 127.0.0.1. No timings are asserted: bounded waits only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from django.contrib.auth.hashers import make_password
from django.db.models import Sum
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from security.models import SecurityEvent, SecurityEventSource
from stations.models import ChargingStation, Connection
from tests.conftest import wait_until
from tests.ocpp_client import SUBPROTOCOL, RawStation, basic_auth, run

pytestmark = pytest.mark.live

SECRET = "Zq4-w9Lr2Hc8Tn6Vb1Xe"
OTHER_SECRET = "Pm7-k2Qs9Wd4Yh1Jf6Ua"
FLOOD = 200


async def attempt(server: Any, identity: str, password: str, local: str = "127.0.0.1") -> int:
    """One handshake from ``local``: 101 when accepted, else the HTTP status of the refusal."""
    try:
        ws = await websockets.connect(
            f"{server.ws_url}/ocpp/{identity}",
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers=basic_auth(identity, password),
            open_timeout=60,
            local_addr=(local, 0),
        )
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def test_flood_of_wrong_passwords(csms_server, station_factory):
    server = csms_server("security-flood", CSMS_AUTH_MAX_FAILURES="10", CSMS_SECURITY_EVENT_FLUSH_MS="100")
    station_factory("CS-FLOOD", password=SECRET)
    station_factory("CS-OK", password=OTHER_SECRET)

    async def scenario() -> tuple[list[int], list[str], int, int]:
        flood = [asyncio.create_task(attempt(server, "CS-FLOOD", f"wrong-{i:04d}", "127.0.0.2")) for i in range(FLOOD)]
        answers: list[str] = []
        # Another station connects while the flood is under way and exchanges heartbeats until it is over.
        async with RawStation.connect(server.ws_url, "CS-OK", headers=basic_auth("CS-OK", OTHER_SECRET)) as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            while len(answers) < 3 or not all(t.done() for t in flood):
                reply = await st.call("Heartbeat", {})
                answers.append(reply[2]["currentTime"])
                await asyncio.sleep(0.05)
        statuses = await asyncio.gather(*flood)
        # Right after: the flooded station, with its password, from its own address, connects.
        after = await attempt(server, "CS-FLOOD", SECRET)
        # From the flooding address even the right password is refused until the window passes (documented).
        from_flooder = await attempt(server, "CS-FLOOD", SECRET, "127.0.0.2")
        return statuses, answers, after, from_flooder

    statuses, heartbeats, after, from_flooder = run(scenario())
    assert statuses == [403] * FLOOD
    assert len(heartbeats) >= 3  # every heartbeat answered (each within call()'s bounded wait)
    assert after == 101
    assert from_flooder == 403

    # Refused attempts: a few aggregated rows, counting every attempt; checked ones are in the connection log,
    # the ones refused unchecked are only counted.
    def counted() -> int:
        rows = SecurityEvent.objects.filter(identity="CS-FLOOD", source=SecurityEventSource.CSMS)
        return rows.aggregate(n=Sum("count"))["n"] or 0

    assert wait_until(lambda: counted() >= FLOOD + 1, timeout_s=15)
    rows = SecurityEvent.objects.filter(identity="CS-FLOOD", source=SecurityEventSource.CSMS)
    assert rows.count() <= 6  # {refused, throttled} x at most 2 windows (+ the window of the later attempt)
    assert {r.remote_addr for r in rows} <= {"127.0.0.2", "*"}
    assert set(rows.values_list("type", flat=True)) == {"CsmsRefusedHandshake", "CsmsThrottledHandshake"}
    assert all(r.station_id is not None for r in rows)
    # Logged one by one only while the identity was under its limit (a few more may race past it).
    refused_logged = Connection.objects.filter(identity="CS-FLOOD", outcome="refused").count()
    assert 9 <= refused_logged < FLOOD // 4
    assert Connection.objects.filter(identity="CS-FLOOD", outcome="accepted").count() == 1


def test_legacy_pbkdf2_hash_over_the_wire(csms_server, station_factory):
    server = csms_server("security-legacy", CSMS_AUTH_MAX_FAILURES="10")
    station = station_factory("CS-OLD", password=SECRET)
    legacy = make_password(SECRET, hasher="pbkdf2_sha256")
    ChargingStation.objects.filter(pk=station.pk).update(password_hash=legacy)

    async def scenario() -> tuple[int, int]:
        wrong = await attempt(server, "CS-OLD", "not-the-password-123")
        right = await attempt(server, "CS-OLD", SECRET)
        return wrong, right

    wrong, right = run(scenario())
    assert (wrong, right) == (403, 101)
    upgraded = ChargingStation.objects.get(pk=station.pk).password_hash
    assert upgraded.startswith("station_sha256$")
    assert ChargingStation.objects.get(pk=station.pk).check_password(SECRET)
    assert run(attempt(server, "CS-OLD", SECRET)) == 101  # and the new hash works on the wire
    reasons = list(Connection.objects.filter(identity="CS-OLD").order_by("pk").values_list("outcome", "reason"))
    assert reasons[0] == ("refused", "wrong password") and [o for o, _ in reasons[1:]] == ["accepted", "accepted"]
