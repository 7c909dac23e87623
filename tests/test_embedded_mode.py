"""`make run`'s embedded defaults: no DATABASE_URL/REDIS_URL -> SQLite (WAL) under var/, in-process layer."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, LiveServer, free_port, wait_for_health
from tests.ocpp_client import RawStation, run

pytestmark = pytest.mark.live


def test_embedded_mode_serves_an_accepted_station_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CSMS_TEST_DB_NAME"}}
    env |= {"DJANGO_SETTINGS_MODULE": "csms.settings", "CSMS_VAR_DIR": str(tmp_path), "CSMS_ADMIN_PASSWORD": "pw"}

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        ).stdout

    manage("migrate", "--noinput")
    assert "Created admin user 'admin'" in manage("ensure_admin")
    assert "exists" in manage("ensure_admin")
    manage("addstation", "DEMO-1")
    port = free_port()
    log_path = tmp_path / "daphne.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--websocket_timeout",
            "-1",
            "csms.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(port, process, log_path)
    try:
        wait_for_health(server)
        with urllib.request.urlopen(f"{server.http_url}/readyz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}

        async def scenario() -> tuple[list, list]:
            async with RawStation.connect(server.ws_url, "DEMO-1") as st:
                return await st.boot(), await st.call("Heartbeat", {})

        boot, heartbeat = run(scenario())
        assert boot[2]["status"] == "Accepted" and heartbeat[0] == 3
    finally:
        server.stop()
    db = sqlite3.connect(tmp_path / "csms.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("SELECT boot_status, vendor_name FROM stations_chargingstation").fetchall() == [
        ("Accepted", "ACME")
    ]


def test_without_root_and_without_redis_server_make_run_says_so_in_one_line() -> None:
    """`make run`'s first step (scripts/ensure-redis-server.sh, the `embedded-redis` target) as an unprivileged
    user on a machine whose redis-server is not there (CSMS_REDIS_SERVER names one that is not on PATH)."""
    if os.getuid() != 0:
        pytest.skip("needs root to run the check as an unprivileged user (runuser)")
    done = subprocess.run(
        [
            "runuser",
            "-u",
            "nobody",
            "--",
            "env",
            "CSMS_REDIS_SERVER=redis-server-not-installed",
            "PATH=/usr/bin:/bin",
            "bash",
            str(ROOT / "scripts" / "ensure-redis-server.sh"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "make run needs redis-server for its worker and beat: not found (redis-server-not-installed), and installing "
        "it needs root (as root: apt-get install redis-server; or set REDIS_URL to a Redis of yours)"
    ]
    # As root, the same lookup installs or finds it: the path of a runnable redis-server.
    found = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-redis-server.sh")], capture_output=True, text=True, timeout=300
    )
    assert found.returncode == 0 and os.access(found.stdout.strip(), os.X_OK)
