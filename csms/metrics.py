"""``/metrics`` in the Prometheus text format: the process's counters and histograms, and the collectors the apps
register in their ``ready()`` (gauges read from the database at scrape time, right with any number of processes).

Several processes (daphne x N, worker, beat): set ``PROMETHEUS_MULTIPROC_DIR`` to a directory shared by them and
emptied at deploy (prometheus_client's multiprocess mode); ``/metrics`` then sums every process's counters and
histograms, and a stopped process's live gauges are dropped (``process_exit``). Without it (the embedded default,
one process), the process's own registry is served.

Labels never carry a station identity (cardinality): actions are one of the 64 OCPP actions or ``other``.
"""

from __future__ import annotations

import atexit
import os
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

from csms.ocpp import actions

_collectors: list[Collector] = []

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

OCPP_MESSAGES = Counter(
    "csms_ocpp_messages_total",
    "Station CALLs answered, by action and outcome (result, error)",
    ["action", "outcome"],
)
OCPP_CALL_ERRORS = Counter("csms_ocpp_call_errors_total", "CALLERRORs sent to stations, by error code", ["code"])
OCPP_HANDLER_SECONDS = Histogram(
    "csms_ocpp_handler_seconds",
    "From a station's CALL parsed to its answer sent, by action",
    ["action"],
    buckets=LATENCY_BUCKETS,
)
COMMANDS = Counter("csms_commands_total", "CSMS->CS commands ended, by action and state", ["action", "state"])
COMMAND_SECONDS = Histogram(
    "csms_command_seconds",
    "From a command recorded to its outcome, by action",
    ["action"],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 120.0),
)
CELERY_TASKS = Counter("csms_celery_tasks_total", "Celery tasks run, by task and outcome", ["task", "outcome"])
WEBHOOK_ATTEMPTS = Counter("csms_webhook_attempts_total", "Webhook delivery attempts, by outcome", ["outcome"])
MESSAGE_LOG_PENDING = Gauge(
    "csms_message_log_pending_rows",
    "Message-log rows buffered, not yet written",
    multiprocess_mode="livesum",
)
MESSAGE_LOG_DROPPED = Counter(
    "csms_message_log_dropped_rows_total", "Message-log rows dropped (the database refused them for too long)"
)
DB_POOL_WAIT_SECONDS = Histogram(
    "csms_db_pool_wait_seconds",
    "Time a station-path database call waited for a free database thread",
    buckets=LATENCY_BUCKETS,
)
GROUP_COMMIT_BATCH_SIZE = Histogram(
    "csms_group_commit_batch_size",
    "Station CALLs applied together in one database transaction by the group-commit writer",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
GROUP_COMMIT_RETRIES = Counter(
    "csms_group_commit_retries_total",
    "Groups rolled back and retried (an item failed, or the COMMIT did), by reason",
    ["reason"],
)
GROUP_SCOPE_FLUSHES = Counter(
    "csms_group_scope_flushes_total",
    "Buffered group writes sent before the group's end: a later CALL of the same station needed them",
    ["reason"],
)
GROUP_COMMIT_REFUSED = Counter(
    "csms_group_commit_refused_total",
    "Station CALLs answered InternalError (retry later) because the group-commit queue was full",
)


_ACTIONS = actions.CS_TO_CSMS | actions.CSMS_TO_CS


def action_label(action: str) -> str:
    return action if action in _ACTIONS else "other"


def collector_register(collector: Collector) -> None:
    """Add an app's collector to ``/metrics`` (idempotent per collector class)."""
    if not any(type(found) is type(collector) for found in _collectors):
        _collectors.append(collector)


def process_exit(pid: int | None = None) -> None:
    """A process stops: its live gauges leave the multiprocess sums (no-op in single-process mode). Registered
    with atexit; a SIGKILLed process's files stay until the directory is emptied at the next deploy."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


atexit.register(process_exit)


def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        own: list[bytes] = []
    else:
        own = [generate_latest(REGISTRY)]
    for collector in _collectors:
        registry.register(collector)
    return HttpResponse(b"".join([*own, generate_latest(registry)]), content_type=CONTENT_TYPE_LATEST)


# --- Celery: every task's outcome (connected in CsmsConfig.ready) ------------------------------------------------
def celery_signals_connect() -> None:
    from celery import signals

    def succeeded(sender: Any = None, **_: Any) -> None:
        CELERY_TASKS.labels(task=getattr(sender, "name", "?"), outcome="success").inc()

    def failed(sender: Any = None, **_: Any) -> None:
        CELERY_TASKS.labels(task=getattr(sender, "name", "?"), outcome="failure").inc()

    def retried(sender: Any = None, **_: Any) -> None:
        CELERY_TASKS.labels(task=getattr(sender, "name", "?"), outcome="retry").inc()

    signals.task_success.connect(succeeded, weak=False, dispatch_uid="csms-metrics-success")
    signals.task_failure.connect(failed, weak=False, dispatch_uid="csms-metrics-failure")
    signals.task_retry.connect(retried, weak=False, dispatch_uid="csms-metrics-retry")
