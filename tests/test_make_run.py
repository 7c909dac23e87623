"""The documented commands in one fresh clone: `make run` with the README's demo (addstation and `manage.py
simulate` against it; the embedded default's private Redis, Celery worker and beat run the jobs, a station gone
silent is marked offline by beat's sweep, and all of them stop with `make run`), then `make cluster` (two daphne
processes behind one port, worker, beat, ftp) on the test's PostgreSQL and Redis: stations spread over both
processes, a command sent through one process reaches a station held by the other, a new release's migration is
applied while the old release serves, then a rolling restart (SIGHUP) replaces the processes one by one while the
others keep their stations, SIGTERM stops every child.

One clone and one .venv (from requirements.txt only, built by whichever command runs first: ~5 minutes here) for
the whole module, so this also proves the runtime requirements are enough for everything the README tells a user to
run. It sees committed files only (commit first).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import websockets
from websockets.protocol import State

from tests.conftest import ROOT, free_port
from tests.ocpp_client import RawStation, run

pytestmark = pytest.mark.live

# pip installs requirements.txt from the local cache or mirror: about 40 s of the ~80 s before /healthz here.
STARTUP_TIMEOUT_S = 480
# The clone runs on embedded defaults: none of the test run's settings may leak into it.
LEAKY_ENV = ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in LEAKY_ENV and not k.startswith(("CSMS_", "DJANGO_", "CELERY_", "PYTEST_"))
    } | {"CSMS_ADMIN_PASSWORD": "demo-password", "PYTHONUNBUFFERED": "1"}


def clone_head(dest: Path) -> None:
    """The checkout's HEAD commit (whichever branch or worktree), without uncommitted changes."""
    for args in (
        ["init", "-q", str(dest)],
        ["-C", str(dest), "fetch", "-q", "--depth", "1", str(ROOT), "HEAD"],
        ["-C", str(dest), "checkout", "-q", "--detach", "FETCH_HEAD"],
    ):
        subprocess.run(["git", *args], check=True, capture_output=True, timeout=120)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """make and the daphne it started share a process group of their own: stop both."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text(errors='replace')[-5000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"no /healthz within {timeout_s} s:\n{log.read_text(errors='replace')[-5000:]}")


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    dest = tmp_path_factory.mktemp("clone") / "csms"
    clone_head(dest)
    yield dest
    # 13,000 files: deleting them takes up to a minute on a busy disk, which no test needs to wait for.
    subprocess.run(["sh", "-c", 'rm -rf "$1" &', "sh", str(dest)], check=True)


@pytest.mark.timeout(STARTUP_TIMEOUT_S + 240)
def test_make_run_in_a_fresh_clone_serves_the_simulator_demo(clone: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A short heartbeat interval (10 s: the 6 s demo sends none) and sweep, so a silent station is stale in 20 s.
    env = clean_env() | {
        "CSMS_HEARTBEAT_INTERVAL_S": "10",
        "CSMS_STALE_GRACE_S": "0",
        "CSMS_STALE_SWEEP_S": "5",
        "CSMS_JOBS_HEARTBEAT_S": "5",
    }
    log = tmp_path / "make-run.log"
    started = time.monotonic()
    pids: dict[str, int] = {}
    with log.open("wb") as out:  # the child keeps its own copy of the file
        process = subprocess.Popen(
            ["make", "run", "HOST=127.0.0.1", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(url, process, log, STARTUP_TIMEOUT_S)
        startup_s = time.monotonic() - started
        output = log.read_text(errors="replace")
        assert "Created admin user 'admin' (password from CSMS_ADMIN_PASSWORD)." in output
        assert "mode: embedded (SQLite under var/, private Redis under var/redis/, Celery worker and beat)" in output
        pids = {name: int(pid) for name, pid in re.findall(r"^embedded: (\w+) started \(pid (\d+)\)$", output, re.M)}
        assert set(pids) == {"redis", "worker", "beat", "ftp", "daphne"}
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}

        python = str(clone / ".venv" / "bin" / "python")

        def manage(*args: str, timeout_s: float = 60) -> str:
            done = subprocess.run(
                [python, "manage.py", *args], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout_s
            )
            assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
            return done.stdout

        assert manage("addstation", "DEMO-00001") == "Registered station DEMO-00001 (security profile 0, Accepted)\n"
        # One station, one EVSE, 6 s: exactly one session (Started, 3 x Updated + MeterValues every 1 s, Ended);
        # a second would not fit before the deadline.
        simulated = manage(
            "simulate",
            "--url",
            f"ws://127.0.0.1:{port}",
            "--stations",
            "1",
            "--evses",
            "1",
            "--prefix",
            "DEMO",
            "--duration",
            "6",
            "--session-every",
            "1",
            "--meter-interval",
            "1",
        )
        assert simulated.splitlines() == [
            f"1 stations x 1 EVSEs -> ws://127.0.0.1:{port} for 6.0 s",
            "done: 12 CALLs answered, errors: none, CSMS requests answered: 0",
        ]

        db = clone / "var" / "csms.sqlite3"
        assert rows(db, "SELECT identity, boot_status, vendor_name, model FROM stations_chargingstation") == [
            ("DEMO-00001", "Accepted", "CSMS-bench", "SimStation")
        ]
        assert rows(db, "SELECT reason, status FROM stations_bootrecord") == [("PowerUp", "Accepted")]
        # The CSMS's answer as it went out on the wire (the log is written in batches: give it a moment).
        answer_sql = (
            "SELECT a.payload FROM stations_messagelog c JOIN stations_messagelog a "
            "ON a.message_id = c.message_id AND a.direction = 'out' AND a.message_type = 3 "
            "WHERE c.action = 'BootNotification' AND c.direction = 'in' AND c.message_type = 2"
        )
        deadline = time.monotonic() + 10
        while not rows(db, answer_sql) and time.monotonic() < deadline:
            time.sleep(0.2)
        [(answer,)] = rows(db, answer_sql)
        assert {k: v for k, v in json.loads(answer).items() if k != "currentTime"} == {
            "status": "Accepted",
            "interval": 10,
        }
        # Readings 3.1, 6.1, 9.2 Wh (11 kW for 3 x 1 s, rounded by the simulator) after 0 at the start.
        assert rows(db, "SELECT is_active, event_count, energy_wh FROM transactions_chargingtransaction") == [
            (0, 5, 9.2)
        ]

        # Worker and beat are alive: beat records itself, the worker the heartbeat job beat sends it.
        assert wait_rows(db, "SELECT process FROM csms_jobheartbeat ORDER BY process", [("beat",), ("worker",)], 60)

        # A station that goes silent (its socket open, answering pings, no OCPP message) is marked offline by the
        # beat-driven sweep: 2 x 10 s + 0 s grace after its last message, swept every 5 s.
        manage("addstation", "DEMO-SILENT")

        async def silent() -> float:
            async with RawStation.connect(f"ws://127.0.0.1:{port}", "DEMO-SILENT") as st:
                assert (await st.boot())[2]["status"] == "Accepted"
                booted = time.monotonic()
                sql = "SELECT is_online FROM stations_chargingstation WHERE identity = 'DEMO-SILENT'"
                while time.monotonic() - booted < 60:
                    if await asyncio.to_thread(rows, db, sql) == [(0,)]:
                        return time.monotonic() - booted
                    await asyncio.sleep(0.5)
                raise AssertionError("the silent station was not marked offline within 60 s")

        offline_after_s = run(silent())
        assert offline_after_s >= 19
        print(f"make run: /healthz after {startup_s:.0f} s; whole test {time.monotonic() - started:.0f} s")
    finally:
        stop_group(process)
        stopped = wait_gone(list(pids.values()), 60)
    assert process.returncode is not None
    assert stopped == [], f"still running after make run stopped: {stopped}"


def wait_rows(db: Path, sql: str, expected: list[tuple], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if rows(db, sql) == expected:
            return True
        time.sleep(0.5)
    return False


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """The pids of ``pids`` still running after ``timeout_s`` (zombies count as gone)."""
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.2)
    return alive


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# --- make cluster ---------------------------------------------------------------------------------------------------
CLUSTER_TIMEOUT_S = STARTUP_TIMEOUT_S + 300
MAX_STATIONS = 40  # connections land where the kernel puts them: enough tries that both processes get some


@dataclass
class Cluster:
    clone: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    database_url: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.clone / "var" / "cluster" / "state.json"

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rows(self, sql: str) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql).fetchall()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def socket_holders(pids: list[int], port: int) -> dict[int, int]:
    """Established connections to ``port`` held by ``pids``: client port -> pid (from /proc: which process has the
    socket's inode open), so the test sees which daphne process the kernel gave each connection."""
    inodes: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes[link[8:-1]] = pid
    held = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and int(local.split(":")[1], 16) == port and inode in inodes:
            held[int(remote.split(":")[1], 16)] = inodes[inode]
    return held


def holder(cluster: Cluster, client_port: int, timeout_s: float = 30) -> int:
    """The daphne pid that accepted the connection from ``client_port`` (it may still be in the accept queue)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = socket_holders([p for p in cluster.state()["web"] if p], cluster.port)
        if client_port in held:
            return held[client_port]
        time.sleep(0.05)
    raise AssertionError(f"no daphne process holds the connection from port {client_port}")


@pytest.fixture(scope="module")
def cluster_database() -> Iterator[str]:
    """A database of its own on the test run's PostgreSQL server, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"{os.environ.get('CSMS_TEST_DB_NAME', 'test_csms')}_cluster"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster(clone: Path, cluster_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    port = free_port()
    env = clean_env() | {
        "DATABASE_URL": cluster_database,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "CSMS_CHANNEL_PREFIX": f"cluster-{uuid.uuid4().hex[:10]}",
        "CSMS_UNKNOWN_STATION_POLICY": "accept",
        "CSMS_FTP_PORT": str(free_port()),
    }
    log = tmp_path_factory.mktemp("cluster") / "make-cluster.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "cluster", "HOST=127.0.0.1", f"PORT={port}", "WEB_PROCESSES=2"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    running = Cluster(clone, port, process, log, env, cluster_database)
    try:
        deadline = started + STARTUP_TIMEOUT_S
        while "cluster: ready: 2 daphne processes" not in running.output():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make cluster exited ({process.returncode}) or not ready:\n{running.output()[-5000:]}")
            time.sleep(0.5)
        print(f"make cluster: ready after {time.monotonic() - started:.0f} s")
        yield running
    finally:
        stop_group(process)


@pytest.mark.timeout(CLUSTER_TIMEOUT_S)
def test_make_cluster_spreads_stations_over_both_processes_and_commands_reach_the_other_one(
    cluster: Cluster,
) -> None:
    state = cluster.state()
    assert set(state) >= {"supervisor", "web", "worker", "beat", "port"}
    assert state["port"] == cluster.port and len(set(state["web"])) == 2
    assert all(_running(state[name]) for name in ("supervisor", "worker", "beat"))

    async def scenario() -> tuple[int, dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            on: dict[str, int] = {}
            while len(set(on.values())) < 2 and len(on) < MAX_STATIONS:
                identity = f"CL-{len(on) + 1:03d}"
                st = await stack.enter_async_context(RawStation.connect(f"ws://127.0.0.1:{cluster.port}", identity))
                assert (await st.boot())[2]["status"] == "Accepted"
                on[identity] = await asyncio.to_thread(holder, cluster, st.ws.local_address[1])
                if len(on) == 1:
                    first = st
            assert set(on.values()) == set(state["web"]), on
            # The Connection rows record the process that accepted each (its lease: ServerProcess, with its pid).
            sql = (
                "SELECT c.identity, p.pid FROM stations_connection c JOIN stations_serverprocess p"
                " ON p.id = c.server_process_id WHERE c.disconnected_at IS NULL AND c.outcome = 'accepted'"
            )
            deadline = time.monotonic() + 30
            while len(open_rows := await asyncio.to_thread(cluster.rows, sql)) < len(on):
                assert time.monotonic() < deadline, open_rows
                await asyncio.sleep(0.2)
            assert dict(open_rows) == on

            # A command for the first station, sent through the other process (an HTTP connection it accepted).
            target, target_pid = next(iter(on.items()))
            token = await asyncio.to_thread(api_token, cluster)
            conn = await asyncio.to_thread(connection_to_other_process, cluster, target_pid)
            sent = asyncio.create_task(asyncio.to_thread(post_reset, conn, token, target))
            while True:
                frame = await first.recv(60)
                if frame[0] == 2 and frame[2] == "Reset":
                    assert frame[3] == {"type": "Immediate"}
                    await first.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
                    break
                if frame[0] == 2:  # the CSMS's own requests after a boot: not what this test is about
                    await first.send_raw(json.dumps([4, frame[1], "NotImplemented", "", {}]))
            return await sent

    status, body = run(scenario())
    assert status == 200, body
    assert (body["state"], body["response"]) == ("answered", {"status": "Accepted"})


PROBE_MIGRATION = "9000_rolling_upgrade_probe"


def release_with_a_migration(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    """Deploy step 2 of the README's rolling upgrade in the clone: a new release's migration (additive, so the
    running release is unaffected: expand/contract), then ``manage.py migrate`` while the old processes serve."""
    migrations = cluster.clone / "stations" / "migrations"
    leaf = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
    (migrations / f"{PROBE_MIGRATION}.py").write_text(
        "from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [('stations', '{leaf}')]\n"
        "    operations = [migrations.RunSQL('CREATE TABLE rolling_upgrade_probe (id integer)',"
        " 'DROP TABLE rolling_upgrade_probe')]\n"
    )
    return subprocess.run(
        [str(cluster.clone / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput"],
        cwd=cluster.clone,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def api_token(cluster: Cluster) -> str:
    request = urllib.request.Request(
        f"{cluster.url}/api/v1/auth/token/",
        data=json.dumps({"username": "admin", "password": "demo-password"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["token"])


def connection_to_other_process(cluster: Cluster, not_pid: int) -> http.client.HTTPConnection:
    for _ in range(MAX_STATIONS):
        conn = http.client.HTTPConnection("127.0.0.1", cluster.port, timeout=60)
        conn.connect()
        assert conn.sock is not None
        if holder(cluster, conn.sock.getsockname()[1]) != not_pid:
            return conn
        conn.close()
    raise AssertionError(f"every HTTP connection landed on pid {not_pid}")


def post_reset(conn: http.client.HTTPConnection, token: str, identity: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"action": "Reset", "payload": {"type": "Immediate"}, "wait": 30})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Host": "127.0.0.1"}
    conn.request("POST", f"/api/v1/stations/{identity}/commands/", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.mark.timeout(CLUSTER_TIMEOUT_S)
def test_make_cluster_rolling_restart_replaces_processes_one_by_one_while_the_others_keep_their_stations(
    cluster: Cluster,
) -> None:
    before = cluster.state()
    old0, old1 = before["web"]

    async def scenario() -> None:
        url = f"ws://127.0.0.1:{cluster.port}"
        async with contextlib.AsyncExitStack() as stack:

            async def connect(identity: str) -> tuple[RawStation, int]:
                for _ in range(10):  # one may land on a process that is stopping: a station retries
                    try:
                        st = await stack.enter_async_context(RawStation.connect(url, identity))
                        assert (await st.boot())[2]["status"] == "Accepted"
                        return st, await asyncio.to_thread(holder, cluster, st.ws.local_address[1])
                    except (OSError, websockets.ConnectionClosed, AssertionError):
                        await asyncio.sleep(0.5)
                raise AssertionError(f"{identity} could not connect again")

            stations: dict[str, tuple[RawStation, int]] = {}
            while min(Counter(pid for _, pid in stations.values()).get(p, 0) for p in (old0, old1)) < 2:
                assert len(stations) < MAX_STATIONS, Counter(pid for _, pid in stations.values())
                identity = f"RR-{len(stations) + 1:03d}"
                stations[identity] = await connect(identity)
            on_old1 = {identity for identity, (_, pid) in stations.items() if pid == old1}

            # The new release's migration (expand only: a new table) applied while the old release serves.
            migrated = await asyncio.to_thread(release_with_a_migration, cluster)
            assert migrated.returncode == 0, migrated.stdout[-3000:]
            for identity, (st, _) in stations.items():  # the running release kept every station through it
                assert st.ws.state is State.OPEN, identity
                assert (await st.call("Heartbeat", {}))[0] == 3, identity

            logged = len(cluster.output())
            os.kill(before["supervisor"], signal.SIGHUP)
            snapshots: list[list[int]] = [[old0, old1]]
            reconnected_to: dict[str, int] = {}
            checked_while_web1_untouched = 0
            deadline = time.monotonic() + 240
            while "cluster: rolling restart done" not in (out := cluster.output()[logged:]) or len(
                reconnected_to
            ) < len(stations):
                assert time.monotonic() < deadline, f"rolling restart not done:\n{out[-3000:]}"
                web = cluster.state()["web"]
                if web != snapshots[-1]:
                    snapshots.append(web)
                if web[0] != old0 and not _running(old0) and f"web-1 (old, pid {old1}) stopping" not in out:
                    # web-0 replaced, web-1 not yet told to stop (the supervisor logs that first): the stations on
                    # web-1 never noticed (their sockets' state is read after the log, in this same loop step).
                    checked_while_web1_untouched += 1
                    closed = [i for i in on_old1 if stations[i][0].ws.state is not State.OPEN]
                    assert closed == [], f"stations on the process not yet restarted lost their socket: {closed}"
                for identity, (st, _) in list(stations.items()):
                    if st.ws.state is not State.OPEN:  # again if it had reconnected to a process then stopped
                        stations[identity] = await connect(identity)
                        reconnected_to[identity] = stations[identity][1]
                await asyncio.sleep(0.1)
            assert checked_while_web1_untouched > 0  # the new web-1 takes seconds to be ready: the loop saw that
            after = cluster.state()["web"]
            assert snapshots == [[old0, old1], [after[0], old1], after], snapshots
            assert not set(after) & {old0, old1}
            assert set(reconnected_to) == set(stations)  # every station had been on an old process
            # Every station is connected again, to a new process, and answered.
            for identity, (st, _) in stations.items():
                assert (await st.call("Heartbeat", {}))[0] == 3, identity
            held = await asyncio.to_thread(socket_holders, after, cluster.port)
            assert {held[st.ws.local_address[1]] for st, _ in stations.values()} <= set(after)

    run(scenario())
    after = cluster.state()
    applied = "SELECT name FROM django_migrations WHERE app = 'stations' AND name = '" + PROBE_MIGRATION + "'"
    assert cluster.rows(applied) == [(PROBE_MIGRATION,)]
    assert cluster.rows("SELECT to_regclass('rolling_upgrade_probe') IS NOT NULL") == [(True,)]
    assert after["supervisor"] == before["supervisor"]
    assert after["worker"] != before["worker"] and after["beat"] != before["beat"]
    assert not _running(before["worker"]) and not _running(before["beat"])
    output = cluster.output()
    assert f"cluster: web-0 replaced: pid {old0} -> {after['web'][0]}" in output
    assert f"cluster: web-1 replaced: pid {old1} -> {after['web'][1]}" in output


@pytest.mark.timeout(CLUSTER_TIMEOUT_S)
def test_make_cluster_stops_every_child_on_sigterm_and_exits_0(cluster: Cluster) -> None:
    state = cluster.state()
    children = descendants(state["supervisor"])
    assert set(state["web"]) | {state["worker"], state["beat"], state["ftp"]} <= set(children)
    os.kill(state["supervisor"], signal.SIGTERM)
    assert cluster.process.wait(60) == 0  # make exits with the supervisor's status
    assert wait_gone([state["supervisor"], *children], 30) == []
    assert not cluster.state_file.exists()
    assert "cluster: worker stopped" in cluster.output()
