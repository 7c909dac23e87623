"""Jobs under faults (csms/beat.py, csms/jobs.py): two beats, or a beat restarted within a slot, send each periodic
job once; beat's schedule survives its restart in its file; a worker SIGKILLed mid-job has the job redelivered to
the next worker (acks late), which completes it without repeating what was done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import schedule
from django.conf import settings
from django.db import connection

from csms.beat import Scheduler
from csms.celery import app as celery_app
from csms.models import JobRun
from tests.conftest import LOG_DIR, ROOT, wait_until
from tests.conftest import test_database_url as database_url

pytestmark = pytest.mark.django_db(transaction=True)


class RecordingScheduler(Scheduler):
    """The project's scheduler with the broker send replaced by a record of what it would send."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        self.sent.append(entry.name)
        return None


def _scheduler(path: Path) -> RecordingScheduler:
    scheduler = RecordingScheduler(celery_app, schedule_filename=str(path), lazy=True)
    scheduler.setup_schedule()
    return scheduler


def _entry(name: str, every_s: float) -> ScheduleEntry:
    return ScheduleEntry(name=name, task="csms.jobs_heartbeat", schedule=timedelta(seconds=every_s), app=celery_app)


def test_every_periodic_job_has_an_interval_schedule_so_beat_claims_each_of_its_slots(tmp_path: Path) -> None:
    scheduler = _scheduler(tmp_path / "schedule")
    try:
        periodic = {name: entry for name, entry in scheduler.schedule.items() if name in settings.CELERY_BEAT_SCHEDULE}
        assert set(periodic) == set(settings.CELERY_BEAT_SCHEDULE)
        assert [name for name, entry in periodic.items() if not isinstance(entry.schedule, schedule)] == []
    finally:
        scheduler.close()


def test_two_beats_sending_the_same_job_at_once_send_it_once_per_slot(tmp_path: Path) -> None:
    beats = [_scheduler(tmp_path / "one"), _scheduler(tmp_path / "two")]
    entry = _entry("test-both-beats", 3600)
    start = threading.Barrier(2)

    def send(beat: RecordingScheduler) -> None:
        try:
            start.wait(10)
            beat.apply_entry(entry)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(beat,)) for beat in beats]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert sorted(len(beat.sent) for beat in beats) == [0, 1]
        assert list(JobRun.objects.values_list("job", flat=True)) == ["beat:test-both-beats"]
        # A beat restarted within the slot (its schedule file lost) sends it no more; the next slot it sends.
        restarted = _scheduler(tmp_path / "three")
        restarted.apply_entry(entry)
        assert restarted.sent == []
        JobRun.objects.update(slot="2000-01-01T00:00:00")
        restarted.apply_entry(entry)
        assert restarted.sent == ["test-both-beats"]
        restarted.close()
    finally:
        for beat in beats:
            beat.close()


def test_a_restarted_beat_keeps_its_schedule_from_its_file_and_does_not_resend_what_is_not_due(tmp_path: Path) -> None:
    path = tmp_path / "schedule"
    first = _scheduler(path)
    name = "stations-mark-stale-offline"
    entry = first.schedule[name]
    entry.last_run_at = entry.default_now() - timedelta(hours=1)  # due now
    first._heap = None  # re-read by the next tick
    while first.tick() == 0:  # every due entry sent, one per tick
        pass
    assert name in first.sent
    sent_at = first.schedule[name].last_run_at
    first.close()  # writes the schedule file, as beat does at its stop

    again = _scheduler(path)
    try:
        assert again.schedule[name].last_run_at == sent_at
        assert again.schedule[name].is_due().is_due is False
        again.tick()
        assert name not in again.sent
    finally:
        again.close()


# --- A worker killed mid-job --------------------------------------------------------------------------------------
VISIBILITY_S = 4  # the test workers' broker visibility timeout: an unacknowledged task is redelivered after it


def _worker(name: str) -> tuple[subprocess.Popen[bytes], Path]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"celery-ops-{name}-{os.getpid()}.log"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "csms.settings",
        "DATABASE_URL": database_url(),
        "CSMS_DB_CONN_MAX_AGE": "0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CSMS_CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CSMS_TEST_DB_NAME", None)
    argv = [sys.executable, "-m", "celery", "-A", "csms", "worker", "-I", "tests.ops.celery_tasks", "--pool", "solo"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"]
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, log


@pytest.fixture
def broker() -> Iterator[list[subprocess.Popen[bytes]]]:
    """This process enqueues to Redis (as production does) for the workers the test starts; killed at the end."""
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()
    started: list[subprocess.Popen[bytes]] = []
    yield started
    celery_app.conf.task_always_eager = eager
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _count(job: str) -> int:
    return JobRun.objects.filter(job=job).count()


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_job_has_it_redelivered_and_completed_once_by_the_next(
    broker: list[subprocess.Popen[bytes]],
) -> None:
    run, steps = uuid.uuid4().hex[:8], 12
    first, first_log = _worker("first")
    broker.append(first)
    celery_app.send_task("tests.ops.slow_steps", args=[run, steps, 0.5])
    assert wait_until(lambda: _count(f"test.step.{run}") >= 3, timeout_s=60), first_log.read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)  # no shutdown, no acknowledgement
    first.wait(10)
    killed_at = time.monotonic()
    done_by_first = _count(f"test.step.{run}")
    assert 3 <= done_by_first < steps and _count(f"test.done.{run}") == 0
    # The next worker restores unacknowledged tasks older than the visibility timeout when it starts.
    while time.monotonic() - killed_at <= VISIBILITY_S:
        time.sleep(0.2)
    second, second_log = _worker("second")
    broker.append(second)
    assert wait_until(lambda: _count(f"test.done.{run}") == 1, timeout_s=60), second_log.read_text()[-3000:]
    attempts = list(JobRun.objects.filter(job=f"test.attempt.{run}").order_by("pk").values_list("pk", flat=True))
    assert len(attempts) == 2  # killed once, redelivered once
    by_attempt = dict.fromkeys(attempts, 0)
    for attempt in JobRun.objects.filter(job=f"test.step.{run}").values_list("result", flat=True):
        by_attempt[attempt or 0] += 1
    # Every step once; the second attempt did only what the first had not.
    assert by_attempt == {attempts[0]: done_by_first, attempts[1]: steps - done_by_first}
    assert JobRun.objects.get(job=f"test.done.{run}").result == attempts[1]
