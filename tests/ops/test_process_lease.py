"""Daphne processes' leases and shutdown (stations/leases.py, stations/lifecycle.py), on real daphne processes of
this test's own (killing one touches no other test's server): a SIGKILLed process's connection, command and station
are ended by the other process once its lease runs out; a SIGTERMed one answers the CALL it is handling, writes its
log rows, closes its stations with 1001 and exits 0."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import websockets
from django.db import connection

from stations.commands import command_send
from stations.leases import CLOSE_GOING_AWAY, CLOSE_PROCESS_DIED
from stations.models import ChargingStation, Command, CommandState, Connection, MessageLog, ServerProcess
from tests.conftest import LiveServer, in_thread, start_daphne, wait_until_async
from tests.conftest import test_database_url as database_url
from tests.ocpp_client import run

pytestmark = pytest.mark.django_db(transaction=True)

LEASE_S = "3"


@pytest.fixture
def own_servers(transactional_db: None) -> Iterator[Callable[[str], LiveServer]]:
    """``own_servers(name)``: a daphne process for this test alone (3 s leases), killed at the end if still up."""
    started: list[LiveServer] = []

    def start(name: str) -> LiveServer:
        server = start_daphne({"CSMS_PROCESS_LEASE_S": LEASE_S}, f"lease-{name}")
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


def _lease_of(server: LiveServer) -> ServerProcess:
    return ServerProcess.objects.get(pid=server.process.pid, ended_at__isnull=True)


@pytest.mark.timeout(120)
def test_a_killed_process_s_connection_command_and_station_are_ended_by_the_other_once_its_lease_expires(
    own_servers: Callable[[str], LiveServer], station_factory: Callable[..., Any]
) -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the two start side by side
        doomed, survivor = pool.map(own_servers, ["a", "b"])
    station = station_factory("LEASE-1")
    doomed_lease = _lease_of(doomed)

    async def scenario() -> None:
        async with doomed.station("LEASE-1") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            command = await in_thread(
                lambda: command_send(station=station, action="Reset", payload={"type": "Immediate"}).pk
            )
            call = await st.recv()  # the Reset CALL, never answered
            assert call[:3] == [2, str(command), "Reset"]
            assert await wait_until_async(
                lambda: Command.objects.filter(pk=command, state=CommandState.SENT).exists(), timeout_s=20
            )
            doomed.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(doomed.process.wait, 10)
            ended = await wait_until_async(
                lambda: Command.objects.filter(pk=command, state=CommandState.FAILED).exists(),
                timeout_s=60,
                interval_s=0.2,
            )
            assert ended, survivor.log()[-3000:]
            # Ended in the same transaction: the station is offline (commands to it now end "offline").
            offline = ChargingStation.objects.filter(pk=station.pk, is_online=False, channel_name="")
            assert await in_thread(offline.exists)
        # Its station connects again, to the live process.
        async with survivor.station("LEASE-1") as st:
            assert (await st.boot())[2]["status"] == "Accepted"

    run(scenario())
    command = Command.objects.get()
    assert command.state == CommandState.FAILED
    assert command.error_description == (
        f"server process {doomed_lease.hostname}:{doomed.process.pid} stopped without closing "
        f"(lease #{doomed_lease.pk} expired)"
    )
    first, second = Connection.objects.filter(outcome="accepted").order_by("pk")
    assert first.server_process_id == doomed_lease.pk
    assert first.disconnected_at is not None and first.close_code == CLOSE_PROCESS_DIED
    assert first.reason == command.error_description
    assert second.server_process_id == _lease_of(survivor).pk
    dead = ServerProcess.objects.get(pk=doomed_lease.pk)
    assert dead.end == ServerProcess.End.EXPIRED and dead.ended_at is not None
    cleaned: dict[str, Any] = dead.cleaned_up or {}
    assert {k: cleaned[k] for k in ("connections", "commands")} == {"connections": 1, "commands": 1}
    live = set(ServerProcess.objects.filter(ended_at__isnull=True).values_list("pk", flat=True))
    assert cleaned["by"] in live
    # Its reconnection opened a new current connection.
    station.refresh_from_db()
    assert station.current_connection_id == second.pk


def _station_row_locked(station_id: int) -> psycopg.Connection[Any]:
    """Another session holds the station's row: a CALL that writes its last-seen time waits in its handler."""
    holder = psycopg.connect(database_url())
    holder.execute("SELECT id FROM stations_chargingstation WHERE id = %s FOR UPDATE", [station_id])
    return holder


def _a_query_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


@pytest.mark.timeout(120)
def test_a_stopped_process_answers_the_call_in_hand_writes_its_log_then_closes_with_going_away_and_exits_0(
    own_servers: Callable[[str], LiveServer], station_factory: Callable[..., Any]
) -> None:
    server = own_servers("graceful")
    station = station_factory("LEASE-2")
    lease = _lease_of(server)
    frames: list[Any] = []

    async def scenario() -> None:
        async with server.station("LEASE-2") as st:
            assert (await st.boot())[2]["status"] == "Accepted"
            holder = await asyncio.to_thread(_station_row_locked, station.pk)
            try:
                await st.send_raw('[2, "hb-in-hand", "Heartbeat", {}]')
                assert await wait_until_async(_a_query_waits_on_a_lock, timeout_s=20)
                server.process.send_signal(signal.SIGTERM)
                assert await wait_until_async(lambda: "shutting down: closing 1 station" in server.log(), timeout_s=20)
            finally:
                await asyncio.to_thread(holder.commit)
                await asyncio.to_thread(holder.close)
            frames.append(await st.recv(timeout=20))
            with pytest.raises(websockets.ConnectionClosed):
                await st.recv(timeout=20)
            assert st.ws.close_code == CLOSE_GOING_AWAY
            assert st.ws.close_reason == ""

    run(scenario())
    assert server.process.wait(30) == 0, server.log()[-3000:]
    [answer] = frames
    assert answer[:2] == [3, "hb-in-hand"] and set(answer[2]) == {"currentTime"}
    assert sorted(MessageLog.objects.filter(message_id="hb-in-hand").values_list("direction", "message_type")) == [
        ("in", 2),
        ("out", 3),
    ]
    [conn] = Connection.objects.filter(outcome="accepted")
    assert conn.disconnected_at is not None and conn.close_code == CLOSE_GOING_AWAY
    assert conn.server_process_id == lease.pk
    assert ChargingStation.objects.filter(pk=station.pk, is_online=False, channel_name="").exists()
    released = ServerProcess.objects.get(pk=lease.pk)
    assert released.end == ServerProcess.End.STOPPED and released.ended_at is not None
    # Its consumer recorded the close itself: nothing was left for the release to end.
    assert released.cleaned_up == {"connections": 0, "commands": 0, "by": lease.pk}
