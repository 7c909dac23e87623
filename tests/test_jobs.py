"""csms/jobs.py: the beat lock, countdowns within the broker's visibility timeout, worker and beat heartbeats."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from csms import jobs
from csms.beat import Scheduler
from csms.models import JobHeartbeat, JobRun
from csms.tasks import jobs_heartbeat
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_visibility_timeout_is_set_and_exceeds_every_countdown_and_task_run():
    options: dict[str, int] = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    timeout = options["visibility_timeout"]
    assert timeout == settings.CSMS_CELERY_VISIBILITY_TIMEOUT_S == 3600
    assert settings.CSMS_CELERY_MAX_COUNTDOWN_S < timeout
    assert settings.CELERY_TASK_TIME_LIMIT < timeout
    # Beat entries expire (the heartbeat) or repeat well within it.
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    for name, entry in schedule.items():
        assert entry.get("options", {}).get("expires", 0) < timeout, name
    # The webhook backoff can be longer than a countdown may be: such a wait is left to the beat sweep.
    assert settings.CSMS_WEBHOOK_BACKOFF_MAX_S > settings.CSMS_CELERY_MAX_COUNTDOWN_S


def test_no_code_but_csms_jobs_enqueues_with_a_countdown_or_eta():
    delayed = re.compile(r"\b(countdown|eta)\s*=")
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests", "bench", "var"} or str(relative) == "csms/jobs.py":
            continue
        if delayed.search(path.read_text()):
            offenders.append(str(relative))
    assert offenders == []


def test_later_enqueues_short_waits_and_leaves_long_ones_to_beat(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # enqueued = run at once here
    assert jobs.later(jobs_heartbeat, args=[], delay_s=settings.CSMS_CELERY_MAX_COUNTDOWN_S + 1) is False
    assert not JobHeartbeat.objects.exists()
    assert jobs.later(jobs_heartbeat, args=[], delay_s=5) is True
    assert list(JobHeartbeat.objects.values_list("process", flat=True)) == ["worker"]


def test_a_beat_job_runs_once_per_slot_however_often_beat_sends_it():
    runs: list[int] = []

    @jobs.once_per_slot("test.job", every_s=lambda: 3600)
    def body() -> int:
        runs.append(1)
        return len(runs)

    assert body() == 1
    assert body() is None  # a second beat (or a restarted one) in the same hour: skipped
    assert runs == [1]
    [run] = JobRun.objects.all()
    assert run.job == "test.job" and run.result == 1 and run.finished_at is not None
    assert run.slot == jobs.slot_of(every_s=3600, now=timezone.now())
    # The next slot runs again.
    JobRun.objects.update(slot="2000-01-01T00:00:00")
    assert body() == 2


def test_slots_are_aligned_windows():
    at = datetime(2026, 12, 2, 1, 59, 59, tzinfo=UTC)
    assert jobs.slot_of(every_s=3600, now=at) == "2026-12-02T01:00:00"
    assert jobs.slot_of(every_s=3600, now=at + timedelta(seconds=1)) == "2026-12-02T02:00:00"
    assert jobs.slot_of(every_s=600, now=at) == "2026-12-02T01:50:00"


def test_jobs_status_tells_alive_from_stale_and_never_seen(settings):
    settings.CSMS_JOBS_ALIVE_S = 60
    settings.CELERY_TASK_ALWAYS_EAGER = False
    JobHeartbeat.objects.create(process="worker", seen_at=timezone.now() - timedelta(seconds=5))
    JobHeartbeat.objects.create(process="beat", seen_at=timezone.now() - timedelta(seconds=61))
    status = jobs.jobs_status()
    assert [(p.process, p.alive) for p in status.processes] == [("worker", True), ("beat", False)]
    JobHeartbeat.objects.all().delete()
    assert [(p.process, p.alive, p.seen_at) for p in jobs.jobs_status().processes] == [
        ("worker", False, None),
        ("beat", False, None),
    ]


def test_beat_scheduler_records_its_heartbeat_from_its_loop(tmp_path):
    from csms.celery import app

    scheduler = Scheduler(app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.setup_schedule()
    try:
        assert scheduler.tick() <= settings.CSMS_JOBS_HEARTBEAT_S
    finally:
        scheduler.close()
    beat = JobHeartbeat.objects.get(process="beat")
    assert (timezone.now() - beat.seen_at).total_seconds() < 5


def test_the_overview_shows_whether_worker_and_beat_are_alive(admin_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CSMS_JOBS_ALIVE_S = 60
    JobHeartbeat.objects.create(process="worker", seen_at=timezone.now() - timedelta(seconds=3))
    JobHeartbeat.objects.create(process="beat", seen_at=timezone.now() - timedelta(minutes=10))
    html = admin_client.get("/").content.decode()
    assert '<span data-testid="jobs-worker">Celery worker <strong>alive</strong> (seen 0' in html
    assert '<span data-testid="jobs-beat">Celery beat <strong>not running</strong> (seen 10' in html
    settings.CELERY_TASK_ALWAYS_EAGER = True
    html = admin_client.get("/").content.decode()
    assert "run in process (no broker: no worker, no beat; periodic jobs do not run)" in html
