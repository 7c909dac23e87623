"""stations/leases.py on real PostgreSQL: renewal, two reapers racing for one expired lease, the release at a
graceful stop, the overview's list of live processes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from stations import leases
from stations.models import ChargingStation, Command, CommandState, Connection, ServerProcess
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def _held_by(process: ServerProcess, identity: str, *, state: str = CommandState.SENT) -> tuple[Connection, Command]:
    """A station connected through ``process`` with a command in flight on that connection."""
    station = ChargingStation.objects.create(identity=identity)
    conn = Connection.objects.create(
        station=station, identity=identity, outcome="accepted", channel_name=f"ch-{identity}", server_process=process
    )
    ChargingStation.objects.filter(pk=station.pk).update(
        is_online=True, current_connection=conn, channel_name=f"ch-{identity}"
    )
    command = Command.objects.create(
        station=station, action="Reset", request={"type": "Immediate"}, state=state, channel_name=f"ch-{identity}"
    )
    return conn, command


def _expired(hostname: str = "web-1", pid: int = 101) -> ServerProcess:
    return ServerProcess.objects.create(hostname=hostname, pid=pid, lease_until=timezone.now() - timedelta(seconds=1))


def test_renewal_extends_the_lease_recreates_a_deleted_row_and_reports_one_ended_by_another(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CSMS_PROCESS_LEASE_S = 30
    monkeypatch.setattr(leases, "_current", None)  # this test process's "own" lease, forgotten afterwards
    pk = leases.process_register(hostname="web-1", pid=7)
    assert leases.current_process_id() == pk
    ServerProcess.objects.filter(pk=pk).update(lease_until=timezone.now())
    leases.process_renew(process_id=pk, hostname="web-1", pid=7)
    remaining = (ServerProcess.objects.get(pk=pk).lease_until - timezone.now()).total_seconds()
    assert 25 < remaining <= 30
    ServerProcess.objects.filter(pk=pk).delete()
    leases.process_renew(process_id=pk, hostname="web-1", pid=7)
    assert ServerProcess.objects.filter(pk=pk, hostname="web-1", pid=7, ended_at__isnull=True).exists()
    ServerProcess.objects.filter(pk=pk).update(ended_at=timezone.now(), end=ServerProcess.End.EXPIRED)
    with pytest.raises(leases.LeaseLost):
        leases.process_renew(process_id=pk, hostname="web-1", pid=7)


def test_an_expired_lease_is_reaped_once_by_two_reapers_racing_and_a_live_one_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leases, "_current", 77)  # the reaper's own lease, recorded as the one that cleaned up
    dead, live = (
        _expired(),
        ServerProcess.objects.create(hostname="web-2", pid=202, lease_until=timezone.now() + timedelta(seconds=30)),
    )
    dead_conn, sent = _held_by(dead, "R-1")
    _, queued = _held_by(dead, "R-2", state=CommandState.QUEUED)
    live_conn, live_command = _held_by(live, "R-3")
    results: list[list[int]] = []
    start = threading.Barrier(2)

    def reap() -> None:
        try:
            start.wait(10)
            results.append(leases.processes_reap(exclude_id=live.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=reap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [[], [dead.pk]]
    why = f"server process web-1:101 stopped without closing (lease #{dead.pk} expired)"
    assert set(Command.objects.filter(pk__in=[sent.pk, queued.pk]).values_list("state", "error_description")) == {
        (CommandState.FAILED, why)
    }
    dead_conn.refresh_from_db()
    assert (dead_conn.close_code, dead_conn.reason, dead_conn.disconnected_at is not None) == (1006, why, True)
    assert list(ChargingStation.objects.filter(is_online=True).values_list("identity", flat=True)) == ["R-3"]
    ended = ServerProcess.objects.get(pk=dead.pk)
    assert (ended.end, ended.cleaned_up) == (ServerProcess.End.EXPIRED, {"connections": 2, "commands": 2, "by": 77})
    # The live process's connection and command are untouched.
    live_conn.refresh_from_db()
    assert live_conn.disconnected_at is None
    assert Command.objects.get(pk=live_command.pk).state == CommandState.SENT
    assert leases.processes_reap(exclude_id=live.pk) == []


def test_a_station_that_reconnected_elsewhere_stays_online_when_its_old_process_is_reaped() -> None:
    dead = _expired()
    old, _ = _held_by(dead, "R-4")
    station = ChargingStation.objects.get(identity="R-4")
    new = Connection.objects.create(station=station, identity="R-4", outcome="accepted", channel_name="ch-new")
    ChargingStation.objects.filter(pk=station.pk).update(current_connection=new, channel_name="ch-new")
    assert leases.processes_reap() == [dead.pk]
    station.refresh_from_db()
    assert (station.is_online, station.channel_name, station.current_connection_id) == (True, "ch-new", new.pk)
    assert Connection.objects.get(pk=old.pk).disconnected_at is not None


def test_release_ends_the_lease_and_what_its_consumers_left_open() -> None:
    process = ServerProcess.objects.create(hostname="web-1", pid=5, lease_until=timezone.now() + timedelta(seconds=30))
    conn, command = _held_by(process, "R-5")
    left = leases.process_release(process_id=process.pk)
    assert (left.connections, left.commands) == (1, 1)
    conn.refresh_from_db()
    assert conn.close_code == leases.CLOSE_GOING_AWAY and conn.disconnected_at is not None
    assert Command.objects.get(pk=command.pk).error_description == (
        "server process web-1:5 stopped (shutdown) before the station answered"
    )
    assert ServerProcess.objects.get(pk=process.pk).end == ServerProcess.End.STOPPED
    assert leases.process_release(process_id=process.pk) == leases.Leftovers(0, 0)


def test_the_overview_lists_the_live_processes_with_their_stations(admin_client: Any) -> None:
    live = ServerProcess.objects.create(hostname="web-1", pid=11, lease_until=timezone.now() + timedelta(seconds=30))
    _held_by(live, "R-6")
    ServerProcess.objects.create(
        hostname="web-2", pid=12, lease_until=timezone.now(), ended_at=timezone.now(), end="stopped"
    )
    html = admin_client.get("/").content.decode()
    assert f'<span data-testid="server-process-{live.pk}">web-1:11 <strong>alive</strong>, 1 station</span>' in html
    assert "web-2:12" not in html


def test_the_readme_documents_the_lease_and_shutdown_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in ("CSMS_PROCESS_LEASE_S", "CSMS_SHUTDOWN_TIMEOUT_S"):
        assert f"| `{name}` |" in readme, name


def test_ended_leases_older_than_a_week_are_forgotten_and_their_connections_kept() -> None:
    old = ServerProcess.objects.create(
        hostname="web-1", pid=1, lease_until=timezone.now(), ended_at=timezone.now() - timedelta(days=8), end="stopped"
    )
    recent = ServerProcess.objects.create(
        hostname="web-1", pid=2, lease_until=timezone.now(), ended_at=timezone.now() - timedelta(days=1), end="stopped"
    )
    conn = Connection.objects.create(identity="X", outcome="accepted", server_process=old)
    assert leases.processes_prune(older_than_days=7) == 1
    # Only the rows of this test: a live server started by an earlier test holds a lease row of its own.
    assert list(ServerProcess.objects.filter(pk__in=[old.pk, recent.pk]).values_list("pk", flat=True)) == [recent.pk]
    conn.refresh_from_db()
    assert conn.server_process_id is None
