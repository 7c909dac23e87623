"""`make run` in a fresh clone, then the README's demo: addstation and `manage.py simulate` against it; the
embedded default's private Redis, Celery worker and beat run the jobs (a station gone silent is marked offline by
beat's sweep), and all of them stop with `make run`.

The clone gets its own .venv from requirements.txt only, so this proves the runtime requirements are enough for
everything the README tells a user to run after `make run`. It sees committed files only (commit first).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

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


@pytest.mark.timeout(STARTUP_TIMEOUT_S + 240)
def test_make_run_in_a_fresh_clone_serves_the_simulator_demo(tmp_path: Path) -> None:
    clone = tmp_path / "csms"
    clone_head(clone)
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
        shutil.rmtree(clone, ignore_errors=True)
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
