"""Rollouts run by a real Celery worker (and its embedded beat) against Redis, with simulated stations on a live
daphne that enqueues its jobs to Redis too: waves, the concurrency limit, failures, and a worker SIGKILLed
mid-rollout that loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from csms.celery import app as celery_app
from firmware.models import FirmwareRollout, RolloutState, RolloutStation, TargetState
from firmware.rollouts import rollout_create, rollout_summary
from stations.models import ChargingStation, Command
from tests.conftest import LOG_DIR, ROOT, LiveServer, wait_until_async
from tests.conftest import test_database_url as database_url
from tests.firmware.factories import signed_image
from tests.firmware.sim import Fleet, firmware_station, waves_in_order
from tests.ocpp_client import run


class Worker:
    """``celery -A csms worker -B`` on the test database and this run's Redis, in its own process group."""

    def __init__(self, name: str) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"celery-{name}-{os.getpid()}.log"
        env = os.environ | {
            "DJANGO_SETTINGS_MODULE": "csms.settings",
            "DATABASE_URL": database_url(),
            "CSMS_DB_CONN_MAX_AGE": "0",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CSMS_ROLLOUT_ADVANCE_INTERVAL_S": "0.5",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CSMS_TEST_DB_NAME", None)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "csms",
                "worker",
                "-B",
                "-s",
                str(LOG_DIR / f"beat-{name}-{os.getpid()}"),
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its beat: no shutdown, no ack of whatever it was doing."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def workers() -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False  # this process enqueues to Redis as production does
    celery_app.control.purge()

    def start(name: str) -> Worker:
        worker = Worker(name)
        started.append(worker)
        return worker

    yield start
    celery_app.conf.task_always_eager = eager
    for worker in started:
        worker.kill()


@pytest.fixture
def server(csms_server: Callable[..., LiveServer]) -> LiveServer:
    return csms_server("rollouts", CELERY_TASK_ALWAYS_EAGER="0")


def _stations(n: int) -> list[ChargingStation]:
    return [ChargingStation.objects.create(identity=f"FW-{i:02d}") for i in range(1, n + 1)]


def _debug(rollout_id: int, fleet: Fleet) -> str:
    rollout = FirmwareRollout.objects.get(pk=rollout_id)
    rows = list(rollout.stations.values_list("station__identity", "state", "detail", "version_confirmed_at"))
    return f"{rollout.state} wave {rollout.current_wave}: {rows}; stations saw {dict(fleet.received)}"


def _fleet_run(server: LiveServer, identities: list[str], fleet: Fleet, body: Callable[[], Any]) -> None:
    async def scenario() -> None:
        tasks = [asyncio.create_task(firmware_station(server, i, fleet)) for i in identities]
        try:
            await body()
        finally:
            fleet.stop.set()
            await asyncio.gather(*tasks)

    run(scenario())


@pytest.mark.timeout(300)  # processes on a shared 2-core machine: generous, never a speed assertion
def test_rollout_of_20_stations_in_waves_of_5_with_two_failures(
    server: LiveServer, workers: Callable[[str], Worker], settings: Any
) -> None:
    stations = _stations(20)
    identities = [s.identity for s in stations]
    image = signed_image("2.0.0")
    fleet = Fleet(new_version="2.0.0", outcomes={"FW-07": "DownloadFailed", "FW-13": "Rejected"})
    workers("waves")

    async def body() -> None:
        rollout = await asyncio.to_thread(
            lambda: rollout_create(firmware=image, stations=stations, wave_size=5, max_concurrent=3).pk
        )
        done = await wait_until_async(
            lambda: (
                FirmwareRollout.objects.filter(pk=rollout, state=RolloutState.COMPLETED).exists()
                and RolloutStation.objects.filter(rollout_id=rollout, version_confirmed_at__isnull=False).count() == 18
            ),
            timeout_s=120,
            interval_s=0.2,
        )
        assert done, await asyncio.to_thread(_debug, rollout, fleet)

    _fleet_run(server, identities, fleet, body)
    rollout = FirmwareRollout.objects.get()
    states = dict(rollout.stations.values_list("station__identity", "state"))
    assert states == {i: TargetState.INSTALLED for i in identities} | {
        "FW-07": TargetState.DOWNLOAD_FAILED,
        "FW-13": TargetState.REJECTED,
    }
    summary = rollout_summary(rollout)
    assert {k: summary[k] for k in ("total", "installed", "confirmed", "failed", "cancelled", "pending")} == {
        "total": 20,
        "installed": 18,
        "confirmed": 18,
        "failed": 2,
        "cancelled": 0,
        "pending": 0,
    }
    assert summary["percent_done"] == 100
    assert fleet.received == {i: 1 for i in identities}
    assert Command.objects.filter(action="UpdateFirmware").count() == 20
    assert fleet.peak_in_flight <= 3
    assert waves_in_order(fleet, [identities[i : i + 5] for i in range(0, 20, 5)])
    assert rollout.current_wave == 4


@pytest.mark.timeout(300)
def test_a_worker_killed_mid_rollout_loses_and_duplicates_nothing(
    server: LiveServer, workers: Callable[[str], Worker]
) -> None:
    stations = _stations(10)
    identities = [s.identity for s in stations]
    image = signed_image("2.1.0")
    fleet = Fleet(new_version="2.1.0")
    first = workers("first")

    async def body() -> None:
        fleet.release = asyncio.Event()
        rollout = await asyncio.to_thread(
            lambda: rollout_create(firmware=image, stations=stations, wave_size=5, max_concurrent=5).pk
        )
        # The first wave went out and the stations are installing when the worker dies.
        assert await wait_until_async(lambda: sum(fleet.received.values()) == 5, timeout_s=30), first.log()[-3000:]
        first.kill()
        fleet.release.set()  # their statuses arrive while no worker runs: nudges wait in Redis, state in the DB
        assert await wait_until_async(lambda: len(fleet.done) == 5, timeout_s=20)
        assert (
            await asyncio.to_thread(
                lambda: FirmwareRollout.objects.get(pk=rollout).stations.filter(state=TargetState.PENDING).count()
            )
            == 5
        )
        second = workers("second")
        done = await wait_until_async(
            lambda: FirmwareRollout.objects.filter(pk=rollout, state=RolloutState.COMPLETED).exists(),
            timeout_s=120,
            interval_s=0.2,
        )
        assert done, second.log()[-3000:]

    _fleet_run(server, identities, fleet, body)
    rollout = FirmwareRollout.objects.get()
    assert dict(rollout.stations.values_list("station__identity", "state")) == {
        i: TargetState.INSTALLED for i in identities
    }
    assert fleet.received == {i: 1 for i in identities}
    per_station = Command.objects.filter(action="UpdateFirmware").values_list("station__identity", flat=True)
    assert sorted(per_station) == identities
