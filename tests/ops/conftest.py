"""One module-scoped topology for the fault tests: private PostgreSQL and Redis, two daphne processes behind one
port, a Celery worker and beat, and ~100 simulated stations charging throughout."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ops.load import LoadRunner
from tests.ops.services import PrivatePostgres, PrivateRedis, free_port, wait_for
from tests.ops.topology import ROOT, Cluster, start_cluster

STATIONS = 100
ADMIN_PASSWORD = "faults-admin-password-0123456789"
LOG_DIR = ROOT / "var" / "test-logs" / "ops"


@dataclass
class Faults:
    """Everything a fault scenario acts on and looks at."""

    pg: PrivatePostgres
    redis: PrivateRedis
    cluster: Cluster
    load: LoadRunner
    env: dict[str, str]
    token: str

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.url.replace("postgres://", "postgresql://"), connect_timeout=10) as conn:
            return list(conn.execute(query, params).fetchall())

    def api(self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float = 30) -> Any:
        request = urllib.request.Request(
            f"{self.cluster.http_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read() or b"null")


def _env(pg: PrivatePostgres, redis: PrivateRedis, var: Path) -> dict[str, str]:
    # Not the test settings' environment (eager jobs, the shared services' URLs, ...): production defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CSMS_", "DJANGO_", "PYTEST_", "CELERY_"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "csms.settings",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": pg.url,
        "REDIS_URL": redis.url,
        "CSMS_VAR_DIR": str(var),
        "CSMS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CSMS_UNKNOWN_STATION_POLICY": "accept",
        "CSMS_UNKNOWN_ID_TOKEN_POLICY": "accept",
        # Commands in flight end within the scenarios' bounds; a worker's unacknowledged job comes back soon.
        "CSMS_CALL_TIMEOUT_S": "10",
        "CSMS_CELERY_VISIBILITY_TIMEOUT_S": "30",
        "CSMS_WEBHOOK_ALLOW_PRIVATE_URLS": "1",
        "CSMS_WEBHOOK_CACHE_S": "1",
        "CSMS_WEBHOOK_TIMEOUT_S": "10",
        # What a SIGKILLed daphne process held is ended by the others once its lease has run out (stations/leases.py).
        "CSMS_PROCESS_LEASE_S": "10",
        # Two cores shared with the rest of the suite: a daphne process may take minutes to import and start.
        "CSMS_CLUSTER_READY_TIMEOUT_S": "400",
    }


def _token(url: str) -> str:
    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    request = urllib.request.Request(
        f"{url}/api/v1/auth/token/", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["token"])


@pytest.fixture(scope="module")
def faults() -> Iterator[Faults]:
    root = Path(tempfile.mkdtemp(prefix="csms-faults-"))
    root.chmod(0o755)  # the postgres user reaches its data directory inside
    pg, redis = PrivatePostgres(root / "pg"), PrivateRedis(root / "redis")
    cluster: Cluster | None = None
    load: LoadRunner | None = None
    t0 = time.monotonic()
    try:
        pg.init()
        redis.start()
        env = _env(pg, redis, root / "var")
        print(f"\nprivate PostgreSQL and Redis up after {time.monotonic() - t0:.1f} s")
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for old in LOG_DIR.glob("*.log"):
            old.unlink()
        # make cluster's supervisor: migrates, makes the admin user, starts worker, beat and two daphne processes.
        cluster = start_cluster(port=free_port(), env=env, logs=LOG_DIR)
        wait_for(lambda: cluster.ready() or cluster.process.poll() is not None, 480, "the cluster ready", 0.5)
        assert cluster.process.poll() is None, (LOG_DIR / "cluster.log").read_text()[-3000:]
        print(f"cluster up (migrated, 2 daphne, worker, beat) after {time.monotonic() - t0:.1f} s")
        token = _token(cluster.http_url)
        load = LoadRunner(cluster.ws_url, STATIONS)
        load.start()
        started = time.monotonic()
        wait_for(lambda: not load.all_answered_since(0), 120, "every station booted and answered")
        print(f"{STATIONS} stations charging after {time.monotonic() - started:.1f} s more")
        yield Faults(pg, redis, cluster, load, env, token)
    finally:
        if load is not None:
            load.finish(timeout_s=30)
        if cluster is not None:
            cluster.stop()
        redis.destroy()
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)
