"""``make bench``: the CSMS under simulated stations, side by side with bare baselines on the same machine.

    python -m bench.harness [--quick] [--only echo,csms-pg] [--profile auto|yes|no]

Servers: ``echo`` (bench/echo.py: Channels consumer, fixed CALLRESULT, no validation, no DB), ``csms-pg``
(daphne + PostgreSQL + Redis channel layer, a fresh database created and dropped here), ``csms-sqlite``
(embedded mode, full run only) and ``ocpp-lib`` (ocpp.v201.ChargePoint on websockets.serve). Only loopback
addresses are used; every phase is bounded in stations and seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import figures, report, servers
from .load import LoadWorkers, raise_nofile_limit

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Plan:
    """What one run measures; quick mode is the same shape with smaller counts and shorter phases."""

    levels: dict[str, list[int]]  # server -> station counts for throughput/latency (closed loop)
    idle: dict[str, int]  # server -> idle connections to hold (then the realistic traffic on them)
    saturated_s: float  # closed-loop phase length
    warmup_s: float  # an untimed closed-loop TransactionEvent phase before the measured one: sessions under way
    paced_s: float  # paced phase length
    think_s: float  # each paced station sends one heartbeat per think_s
    profile_stations: int
    profile_s: float
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mv_at: int = 100  # the level where the TE+MV mix of the earlier runs also runs (continuity)
    # Open loop: ``open_loop[server]`` stations, each a TransactionEvent every open_loop_interval_s (issue 18: 1,000
    # stations every 2 s).
    open_loop: dict[str, int] = field(default_factory=dict)
    open_loop_interval_s: float = 2.0
    open_loop_s: float = 10.0
    # Realistic traffic on the idle stations: a TransactionEvent every 60 s while charging, a heartbeat every 300 s.
    realistic: tuple[str, ...] = ()
    realistic_s: float = 0.0
    realistic_te_s: float = 60.0
    realistic_heartbeat_s: float = 300.0


QUICK = Plan(
    levels={"echo": [100], "csms-pg": [100], "csms-sqlite": [100], "ocpp-lib": [100]},
    idle={"echo": 1000, "csms-pg": 1000},
    saturated_s=3,
    warmup_s=1,
    paced_s=3,
    think_s=1.5,
    profile_stations=100,
    profile_s=3,
    kinds={"ocpp-lib": ("heartbeat",)},
    open_loop={"echo": 400, "csms-pg": 400, "csms-sqlite": 400},
    open_loop_s=6,
    realistic=("echo", "csms-pg"),
    realistic_s=15,
)
# The harness itself under test (tests/bench): every phase, a handful of stations, seconds.
SMOKE = Plan(
    levels={"echo": [10], "csms-pg": [10], "csms-sqlite": [10]},
    idle={"echo": 20, "csms-pg": 20},
    saturated_s=1,
    warmup_s=0.5,
    paced_s=1,
    think_s=0.5,
    profile_stations=10,
    profile_s=1,
    mv_at=10,
    open_loop={"echo": 10, "csms-pg": 10, "csms-sqlite": 10},
    open_loop_interval_s=0.5,
    open_loop_s=2,
    realistic=("echo", "csms-pg"),
    realistic_s=2,
    realistic_te_s=1,
    realistic_heartbeat_s=2,
)
FULL = Plan(
    levels={
        "echo": [100, 1000, 5000],
        "csms-pg": [100, 1000, 5000],
        "csms-sqlite": [100],  # embedded mode is for small sites; its 1,000-station figure is the open-loop one
        "ocpp-lib": [100],  # a second baseline; at 100 stations only, which keeps the full run under 12 minutes
    },
    idle={"echo": 10000, "csms-pg": 10000},
    saturated_s=4,
    warmup_s=3,
    paced_s=6,
    think_s=4,
    profile_stations=100,
    profile_s=4,
    kinds={"ocpp-lib": ("heartbeat",)},
    open_loop={"echo": 1000, "csms-pg": 1000, "csms-sqlite": 1000},
    open_loop_s=20,
    realistic=("echo", "csms-pg"),
    realistic_s=65,  # every station sends at least one TransactionEvent (its first one, Started)
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids(db_url: str | None) -> list[int]:
    """The backends of the bench's database and PostgreSQL's own WAL writer, checkpointer and background writer (the
    server is shared with other work on the box: other databases' backends are not ours to count)."""
    if db_url is None:
        return []
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid())"
            " OR backend_type IN ('walwriter', 'checkpointer', 'background writer')"
        ).fetchall()
    return [int(row[0]) for row in rows]


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return out


class CpuSplit:
    """Who burns the 2 cores during a phase: the server (its daphne), PostgreSQL, the simulated stations."""

    def __init__(self, server: servers.Server, workers: LoadWorkers, db_url: str | None = None) -> None:
        self.groups = {
            "server": [server.pid],
            "postgres": postgres_pids(db_url),
            "stations": [p.pid for p in workers.procs],
        }
        self.db_url = db_url
        self.before = {k: cpu_by_pid(v) for k, v in self.groups.items()}
        self.started = time.monotonic()

    def result(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        out: dict[str, Any] = {}
        for group, pids in self.groups.items():
            # A PostgreSQL backend that exited during the phase took its counters with it (not counted); one that
            # started during it (a connection replaced after CONN_MAX_AGE) counts whole.
            if group == "postgres" and self.db_url is not None:
                pids = sorted(set(pids) | set(postgres_pids(self.db_url)))
            after = cpu_by_pid(pids)
            used = sum(cpu - self.before[group].get(pid, 0.0) for pid, cpu in after.items())
            out[f"{group}_cpu"] = f"{used / wall * 100:.0f} %"
            out[f"{group}_cpu_s"] = round(used, 3)
        return out


def with_cpu_per_event(figures: dict[str, Any]) -> dict[str, Any]:
    """CPU milliseconds per answered (= persisted) event: the server's, and PostgreSQL's beside it."""
    ok = figures.get("ok") or 0
    if not ok or "server_cpu_s" not in figures:
        return figures
    out = figures | {"server_cpu_ms_per_event": round(figures["server_cpu_s"] / ok * 1000, 3)}
    if figures.get("postgres_cpu_s"):
        out["postgres_cpu_ms_per_event"] = round(figures["postgres_cpu_s"] / ok * 1000, 3)
    return out


def wait_quiet(server: servers.Server, timeout_s: float = 60) -> None:
    """Wait until the server burns < 10 % CPU (e.g. it has recorded the disconnections of the last phase)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.process.poll() is None:
        before = cpu_seconds(server.pid)
        time.sleep(0.5)
        if cpu_seconds(server.pid) - before < 0.05:
            return


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Throughput of successful round trips and their latency; n/a when the server refused the action. Open loop:
    offered and served per second of the phase, and whether the server kept up (every due message answered)."""
    ok, errors = result["ok"], result["errors"]
    out: dict[str, Any] = {
        "stations": result["stations"],
        "ok": ok,
        "errors": errors,
        "seconds": round(result["elapsed_s"], 2),
    }
    if ok == 0 and any(key.endswith(":NotSupported") for key in errors):
        return out | {"per_s": report.NA, "p50_ms": None, "p95_ms": None, "p99_ms": None, "note": "NotSupported"}
    out |= {"per_s": round(ok / result["elapsed_s"], 1)} | report.percentiles(result["latencies"])
    if result.get("offered") is not None:
        duration = result["duration_s"]
        out |= {
            "offered": result["offered"],
            "offered_per_s": round(result["offered"] / duration, 1),
            "served_per_s": round(ok / duration, 1),
            "kept_up": ok >= result["offered"] and not errors,
        }
    if result.get("timeline"):
        out |= timeline_tail(result["timeline"], result.get("window_s") or 2.0)
    if len(result.get("by_action", {})) > 1:
        out["by_action"] = {a: {"ok": len(v)} | report.percentiles(v) for a, v in result["by_action"].items()}
    return out


def timeline_tail(timeline: list[tuple[float, float, str]], window_s: float) -> dict[str, Any]:
    """Where an open-loop phase's tail is: p50/p99 of the messages due in each ``window_s`` of the phase (the first
    window holds every station's first message), and of each kind of message (a TransactionEvent's eventType)."""
    windows: dict[int, list[float]] = {}
    kinds: dict[str, list[float]] = {}
    for due_s, latency_s, kind in timeline:
        windows.setdefault(int(due_s // window_s), []).append(latency_s)
        kinds.setdefault(kind, []).append(latency_s)

    def brief(values: list[float]) -> dict[str, Any]:
        pct = report.percentiles(sorted(values))
        return {"n": len(values), "p50_ms": pct["p50_ms"], "p99_ms": pct["p99_ms"]}

    return {
        "by_window": {f"{w * window_s:g}-{(w + 1) * window_s:g} s": brief(v) for w, v in sorted(windows.items())},
        "by_kind": {k: brief(v) for k, v in sorted(kinds.items())},
    }


def run_level(
    server: servers.Server, name: str, stations: int, plan: Plan, kinds: tuple[str, ...], db_url: str | None = None
) -> dict[str, Any]:
    identities = [f"{name[:6]}-{stations}-{i:05d}" for i in range(stations)]
    workers = LoadWorkers(server.ws_url, identities, processes=1 if stations <= 200 else 2)
    wait_quiet(server)  # the previous phase's disconnections may still be being recorded
    try:
        # Boot storm: every station of the level connects and boots at once, one attempt each.
        storm = workers.connect(concurrency=None, attempts=1, timeout_s=90)
        log(f"{name} {stations}: boot storm {storm}")
        out: dict[str, Any] = {"boot_storm": storm}
        if storm["up"] < stations:
            # The ones that failed come back the way real stations do: retries, a bounded number in flight.
            out["ramp_up"] = workers.connect(concurrency=200, attempts=3, timeout_s=150)
            log(f"{name} {stations}: ramp-up of the rest {out['ramp_up']}")
        for kind in kinds:
            if kind == "transaction" and stations != plan.mv_at:
                continue
            if kind == "te":  # the stations' streams resume where the warm-up left them (bench/load.py)
                workers.load(kind, plan.warmup_s)
            wait_quiet(server)
            split = CpuSplit(server, workers, db_url)
            out[kind] = with_cpu_per_event(summarise(workers.load(kind, plan.saturated_s)) | split.result())
            log(f"{name} {stations}: {kind} saturated {_brief(out[kind])}")
            if kind == "heartbeat":
                out[f"{kind}_paced"] = summarise(workers.load(kind, plan.paced_s, think_s=plan.think_s))
                log(f"{name} {stations}: {kind} paced {_brief(out[f'{kind}_paced'])}")
        return out
    finally:
        workers.close()
        wait_quiet(server)


def run_open_loop(server: servers.Server, name: str, plan: Plan, db_url: str | None = None) -> dict[str, Any]:
    """``open_loop[name]`` stations, each sending a TransactionEvent every ``open_loop_interval_s`` on its own
    schedule: does the server keep up (served = offered), and at what latency."""
    stations = plan.open_loop[name]
    identities = [f"ol-{name[:6]}-{i:05d}" for i in range(stations)]
    workers = LoadWorkers(server.ws_url, identities, processes=1 if stations <= 200 else 2)
    wait_quiet(server)
    try:
        out: dict[str, Any] = {"connect": workers.connect(concurrency=200, attempts=3, timeout_s=150)}
        # Sessions at a random point of their course, as on a site that has been running: the phase sees the mix's
        # share of session starts (1 in 12 events), not every station's Started in its first interval.
        out["advance"] = workers.advance()
        wait_quiet(server)
        split = CpuSplit(server, workers, db_url)
        load = workers.load("te", plan.open_loop_s, intervals={"te": plan.open_loop_interval_s})
        load["window_s"] = plan.open_loop_interval_s
        out |= with_cpu_per_event(summarise(load) | split.result()) | {"interval_s": plan.open_loop_interval_s}
        log(f"{name}: {stations} stations, a TransactionEvent every {plan.open_loop_interval_s:g} s: {_brief(out)}")
        return out
    finally:
        workers.close()
        wait_quiet(server)


def _brief(figures: dict[str, Any]) -> str:
    keys = ("per_s", "offered_per_s", "served_per_s", "p50_ms", "p99_ms", "errors", "server_cpu", "postgres_cpu",
            "stations_cpu", "server_cpu_ms_per_event")  # fmt: skip
    return " ".join(f"{k}={figures[k]}" for k in keys if k in figures)


def online_count(db_url: str, prefix: str) -> int:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM stations_chargingstation WHERE is_online AND identity LIKE %s", [prefix + "%"]
        ).fetchone()
    return int(row[0]) if row else 0


def run_idle(
    server: servers.Server, name: str, count: int, plan: Plan, db_url: str | None = None, track_offline: bool = False
) -> dict[str, Any]:
    """Hold ``count`` booted, silent stations; RSS growth per connection of the one daphne process. Then (when the
    plan says so) realistic traffic on all of them: latency, RSS per station under it, CPU. With the CSMS's
    database: all of them then drop at once, and the time until every one is recorded offline."""
    warm = LoadWorkers(server.ws_url, [f"warm-{name[:6]}-{i}" for i in range(20)], processes=1)
    warm.connect()
    warm.close()
    wait_quiet(server)
    before = server.rss_kb()
    identities = [f"idle-{name[:6]}-{i:05d}" for i in range(count)]
    workers = LoadWorkers(server.ws_url, identities, processes=4 if count > 2000 else 2)
    started = time.monotonic()
    realistic: dict[str, Any] | None = None
    try:
        result = workers.connect(concurrency=200, timeout_s=300)
        seconds = time.monotonic() - started
        wait_quiet(server, 20)
        after = server.rss_kb()
        if name in plan.realistic and plan.realistic_s:
            intervals = {"te": plan.realistic_te_s, "heartbeat": plan.realistic_heartbeat_s}
            # Stations charging, as the figure says: each one's session started before the phase (a Started of
            # every station within its first minute would be a session-start storm, not this traffic).
            started_sessions = workers.advance(exact=1, timeout_s=600)
            wait_quiet(server, 20)
            split = CpuSplit(server, workers, db_url)
            load = workers.load("realistic", plan.realistic_s, intervals=intervals)
            load["window_s"] = 5.0
            realistic = summarise(load) | split.result() | {"intervals_s": intervals, "advance": started_sessions}
            realistic_rss = server.rss_kb()
            held_now = load["stations"]
            realistic |= {
                "rss_mb": round(realistic_rss / 1024, 1),
                "kb_per_station": round((realistic_rss - before) / held_now, 1) if held_now else None,
            }
            log(
                f"{name}: realistic traffic on {held_now} stations {_brief(realistic)}, "
                f"{realistic['kb_per_station']} kB"
            )
    finally:
        workers.close()
        cut_at = time.monotonic()
    offline_s = None
    if track_offline and db_url is not None:
        prefix = f"idle-{name[:6]}-"
        deadline = cut_at + 120
        while time.monotonic() < deadline and online_count(db_url, prefix):
            time.sleep(0.2)
        offline_s = round(time.monotonic() - cut_at, 1) if not online_count(db_url, prefix) else None
    held = result["accepted"]
    out: dict[str, Any] = {
        "target": count,
        "held": held,
        "errors": result["errors"],
        "connect_s": round(seconds, 1),
        "connects_per_s": round(held / seconds, 1) if seconds else None,
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "kb_per_connection": round((after - before) / held, 1) if held else None,
    }
    if track_offline:
        out["all_offline_after_s"] = offline_s  # None: some still online after 120 s
    if realistic is not None:
        out["realistic"] = realistic
    log(f"{name}: idle { ({k: v for k, v in out.items() if k != 'realistic'}) }")
    return out


# --- command round trip across two daphne processes (needs the command API) --------------------------------------
def _post(url: str, body: dict[str, Any], token: str | None = None, timeout_s: float = 30) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Token {token}"} if token else {})
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500].decode(errors="replace")


def command_round_trip(env: dict[str, str], server_a: servers.Server, count: int) -> dict[str, Any]:
    """The station is connected to daphne A, the API call goes to daphne B: the command crosses Redis twice."""
    # /api/v1/ itself may have no root view: ask for the commands list (401 without a token when it exists).
    if servers.http_status(f"{server_a.http_url}/api/v1/commands/") == 404:
        return {"status": report.NA, "reason": "no /api/v1/ (command pipeline not merged yet)"}
    from .simulator import SimStation

    password = "bench-" + uuid.uuid4().hex
    subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"],
        cwd=servers.ROOT,
        env=env | {"CSMS_ADMIN_PASSWORD": password},
        check=True,
        capture_output=True,
        timeout=60,
    )
    server_b = servers.start("csms-pg-b", env)
    try:
        status, body = _post(f"{server_b.http_url}/api/v1/auth/token/", {"username": "admin", "password": password})
        if status != 200:
            return {"status": "error", "reason": f"token: {status} {body}"}
        token = body["token"]

        async def scenario() -> dict[str, Any]:
            async with SimStation(server_a.ws_url, "cmd-rtt-1") as station:
                await station.boot()
                url = f"{server_b.http_url}/api/v1/stations/cmd-rtt-1/commands/"
                latencies: list[float] = []
                failures: dict[str, int] = {}
                for _ in range(count):
                    started = time.perf_counter()
                    code, reply = await asyncio.to_thread(
                        _post, url, {"action": "ClearCache", "payload": {}, "wait": 10}, token
                    )
                    elapsed = time.perf_counter() - started
                    state = reply.get("state") if isinstance(reply, dict) else None
                    if code == 200 and state == "answered":
                        latencies.append(elapsed)
                    else:
                        failures[f"{code}:{state}"] = failures.get(f"{code}:{state}", 0) + 1
                return {"ok": len(latencies), "errors": failures} | report.percentiles(sorted(latencies))

        return asyncio.run(scenario())
    finally:
        server_b.stop()


# --- profile ---------------------------------------------------------------------------------------------------
def profile_load(env: dict[str, str], plan: Plan, kind: str) -> dict[str, Any]:
    """CPU profile of the CSMS (every thread) under one saturated load: where a station's CALL spends its time."""
    out_path = Path(tempfile.mkstemp(prefix="bench-profile-", suffix=".prof")[1])
    server = servers.start("csms-pg-profiled", env, profile_to=out_path)
    identities = [f"prof-{kind[:2]}-{i:04d}" for i in range(plan.profile_stations)]
    workers = LoadWorkers(server.ws_url, identities, processes=1)
    try:
        workers.connect()
        figures = summarise(workers.load(kind, plan.profile_s))
    finally:
        workers.close()
        # daphne stops its reactor on SIGINT; the wrapper then writes the profile. Under the profiler the backlog
        # (closing stations, their last CALLs) takes a while: killed at 30 s, it wrote nothing (2026-12-02).
        server.stop(signal.SIGINT, timeout_s=180)
    if not out_path.stat().st_size:
        return {"error": "no profile written", "load": kind, "under_profiler": figures}
    stats = pstats.Stats(str(out_path))
    rows = []
    for (filename, line, func), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(filename)}:{line}({func})", "calls": calls, "tottime_s": tottime,
                     "cumtime_s": cumtime})  # fmt: skip
    # Threads idle in the pool or blocked on a socket are not work: shares are of the busy CPU time.
    busy = [r for r in rows if _area(r["function"]) != WAITING]
    total = sum(r["tottime_s"] for r in busy) or 1
    by_tottime = sorted(busy, key=lambda r: -r["tottime_s"])[:25]
    for r in by_tottime:
        r["share"] = f"{r['tottime_s'] / total * 100:.1f} %"
    groups: dict[str, float] = {}
    for r in busy:
        groups[_area(r["function"])] = groups.get(_area(r["function"]), 0) + r["tottime_s"]
    inclusive = {}
    for label, path, func in HOT_PATH:
        cum = max(
            (r["cumtime_s"] for r in rows
             if r["function"].startswith(f"{path}:") and r["function"].endswith(f"({func})")),
            default=0.0,
        )  # fmt: skip
        inclusive[label] = f"{cum / total * 100:.1f} %"
    out_path.unlink(missing_ok=True)
    return {
        "load": kind,
        "under_profiler": figures,
        "busy_cpu_s": round(total, 2),
        "busy_cpu_by_area": {k: f"{v / total * 100:.1f} %" for k, v in sorted(groups.items(), key=lambda i: -i[1])},
        "hot_path_inclusive": inclusive,
        "top_self_time": by_tottime,
    }


# Inclusive CPU of the steps of a station's CALL (share of the busy CPU), to say where the time goes.
HOT_PATH = (
    ("database thread pool call", "csms/dbpool.py", "_in_db_thread"),
    ("call_commit: handler in one transaction", "stations/calls.py", "call_commit"),
    ("TransactionEvent: transaction_event_apply", "transactions/services.py", "transaction_event_apply"),
    ("MeterValues: meter_values_record", "transactions/services.py", "meter_values_record"),
    ("message log writer (COPY, batched)", "stations/message_log.py", "rows_write"),
    ("Heartbeat answered in the event loop", "stations/calls.py", "call_answer_without_db"),
    ("schema validation (request + response)", "csms/ocpp/schemas.py", "validate"),
    ("connection health check (SELECT 1)", "postgresql/base.py", "is_usable"),
    ("commit", "django/db/backends/base/base.py", "commit"),
    ("consumer receive (parse, validate, dispatch)", "csms/ocpp/consumer.py", "_on_call"),
)
WAITING = "waiting (idle threads, locks, poll)"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(servers.ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


AREAS = (
    ("django/db", "Django ORM"),
    ("psycopg", "psycopg"),
    ("jsonschema", "jsonschema validation"),
    ("referencing", "jsonschema validation"),
    ("rpds", "jsonschema validation"),
    ("channels_redis", "channels_redis"),
    ("redis/", "redis client"),
    ("asgiref", "asgiref sync/async"),
    ("channels/", "channels"),
    ("autobahn", "autobahn/twisted websocket"),
    ("twisted", "autobahn/twisted websocket"),
    ("daphne", "daphne"),
    ("threading.py", "thread pool waits"),
    ("concurrent/futures", "thread pool waits"),
    ("asyncio", "asyncio"),
    ("selectors", "asyncio"),
    ("json/", "json"),
    ("csms/", "csms (ours)"),
    ("stations/", "stations (ours)"),
    ("django/", "Django other"),
)


def _area(function: str) -> str:
    waits = ("method 'acquire'", "method 'poll'", "built-in method select", "'get' of '_queue.SimpleQueue'")
    if any(w in function for w in waits):
        return WAITING
    for needle, area in AREAS:
        if needle in function:
            return area
    return "other"


# --- the run ----------------------------------------------------------------------------------------------------
def pg_env(db_url: str) -> dict[str, str]:
    return servers.base_env() | {
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "CSMS_CHANNEL_PREFIX": "bench-" + uuid.uuid4().hex[:10],  # never meets another run's or the tests' keys
        "CSMS_UNKNOWN_STATION_POLICY": "accept",  # stations register themselves at the handshake
        "CSMS_LOG_LEVEL": "WARNING",
    }


def measure(name: str, server: servers.Server, plan: Plan, db_url: str | None = None) -> dict[str, Any]:
    """``db_url``: the PostgreSQL database of csms-pg (offline tracking, PostgreSQL's CPU beside the server's)."""
    kinds = plan.kinds.get(name, ("heartbeat", "te", "transaction"))
    result: dict[str, Any] = {"levels": {}}
    if name in plan.idle:  # first, on a fresh process: RSS growth is then the connections' and nothing else's
        result["idle"] = run_idle(server, name, plan.idle[name], plan, db_url, track_offline=db_url is not None)
    for stations in plan.levels.get(name, []):
        result["levels"][str(stations)] = run_level(server, name, stations, plan, kinds, db_url)
    if name in plan.open_loop:
        result["open_loop"] = run_open_loop(server, name, plan, db_url)
    return result


def sqlite_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The embedded default as ``make run`` has it without DATABASE_URL/REDIS_URL, in a fresh CSMS_VAR_DIR."""
    var_dir = tempfile.mkdtemp(prefix="csms-bench-sqlite-")
    return (
        servers.base_env()
        | {"CSMS_VAR_DIR": var_dir, "CSMS_UNKNOWN_STATION_POLICY": "accept", "CSMS_LOG_LEVEL": "WARNING"}
        | (extra or {})
    )


def run(
    plan: Plan,
    mode: str,
    only: set[str] | None,
    profile: bool,
    csms_env: dict[str, str] | None = None,
    embedded_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    nofile = raise_nofile_limit()  # inherited by every server started here, and by the load workers
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "nofile": nofile,
            "kernel": platform.release(),
            # Other work on the box skews absolute figures: recorded so a noisy run is recognisable.
            "loadavg_at_start": os.getloadavg(),
        },
        "plan": {k: v for k, v in plan.__dict__.items()},
        "servers": {},
        "csms_env": csms_env or {},
        "embedded_env": embedded_env or {},
    }
    started = time.monotonic()
    wanted = [
        n
        for n in ("echo", "csms-pg", "csms-sqlite", "ocpp-lib")
        if n in plan.levels or n in plan.idle or n in plan.open_loop
    ]
    wanted = [n for n in wanted if not only or n in only]
    with servers.PostgresDatabase(PG_ADMIN_URL) as db:
        env = pg_env(db.url)
        csms_pg_env = env | (csms_env or {})
        if {"csms-pg", "echo"} & set(wanted) or profile:
            servers.migrate(env)
        for name in wanted:
            log(f"--- {name}")
            if name == "csms-sqlite":
                embedded = sqlite_env(embedded_env)
                servers.migrate(embedded)
                server = servers.start_embedded(name, embedded)
            elif name == "ocpp-lib":
                server = servers.start_ocpp_baseline(env)
            elif name == "echo":
                server = servers.start(name, env, app="bench.echo:application")
            else:
                server = servers.start(name, csms_pg_env)
            try:
                results["servers"][name] = measure(name, server, plan, db.url if name == "csms-pg" else None)
                if name == "csms-pg":
                    results["command_round_trip"] = command_round_trip(
                        csms_pg_env, server, 50 if mode == "full" else 20
                    )
                    log(f"command round trip: {results['command_round_trip']}")
            finally:
                server.stop()
        if profile and (not only or "csms-pg" in only):
            results["profiles"] = {}
            for kind in ("heartbeat", "te"):
                log(f"--- profile: csms-pg under cProfile, {kind} load")
                results["profiles"][kind] = profile_load(csms_pg_env, plan, kind)
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    return results


def rows_for(results: dict[str, Any]) -> list[list[str]]:
    srv = results["servers"]
    names = [n for n in ("echo", "csms-pg", "csms-sqlite", "ocpp-lib") if n in srv]
    header = ["figure"]
    for n in names:
        header += [n] if n in ("echo", "ocpp-lib") else [n, "vs echo"]
    rows = [header]

    def row(label: str, getter: Any, unit: str = "", times: bool = False) -> None:
        base = getter(srv.get("echo", {}))
        cells = [label]
        for n in names:
            value = getter(srv[n])
            cells.append(report.fmt(value, unit))
            if n not in ("echo", "ocpp-lib"):
                cells.append(report.ratio(value, base, times))
        if any(c != report.NA for c in cells[1:]):
            rows.append(cells)

    def dig(*keys: str) -> Any:
        def get(d: dict[str, Any]) -> Any:
            for k in keys:
                if not isinstance(d, dict) or k not in d:
                    return None
                d = d[k]
            return d

        return get

    row("idle stations held", dig("idle", "held"))
    row("idle: failed attempts (retried)", lambda d: _failures(d.get("idle")))
    row("idle RSS per connection", dig("idle", "kb_per_connection"), " kB", times=True)
    row("idle connects+boots per s", dig("idle", "connects_per_s"), "/s")
    row("idle: all dropped at once, s until recorded offline", dig("idle", "all_offline_after_s"), " s")
    levels = sorted({int(lv) for n in names for lv in srv[n].get("levels", {})})
    for lv in levels:
        k = str(lv)
        row(f"boot storm {lv}: s to all Accepted", dig("levels", k, "boot_storm", "seconds"), " s", times=True)
        row(f"boot storm {lv}: accepted", dig("levels", k, "boot_storm", "accepted"))
        row("  then ramp-up of the rest: s", dig("levels", k, "ramp_up", "seconds"), " s", times=True)
        row(f"boot storm {lv}: failed attempts", lambda d, k=k: _failures(dig("levels", k, "boot_storm")(d)))
    kinds = (("heartbeat", "heartbeats"), ("te", "TransactionEvents"), ("transaction", "TE+MV events"))
    for kind, label in kinds:
        for lv in levels:
            k = str(lv)
            row(f"stations up for {label} @{lv}", dig("levels", k, kind, "stations"))
            row(f"{label}/s @{lv} (saturated)", dig("levels", k, kind, "per_s"), "/s")
            row(f"  p99 @{lv} saturated", dig("levels", k, kind, "p99_ms"), " ms", times=True)
            row(f"  daphne CPU ms per event @{lv}", dig("levels", k, kind, "server_cpu_ms_per_event"), " ms", True)
            row(f"  PostgreSQL CPU ms per event @{lv}", dig("levels", k, kind, "postgres_cpu_ms_per_event"), " ms")
            row(f"  paced p50 @{lv}", dig("levels", k, f"{kind}_paced", "p50_ms"), " ms", times=True)
            row(f"  paced p95 @{lv}", dig("levels", k, f"{kind}_paced", "p95_ms"), " ms", times=True)
            row(f"  paced p99 @{lv}", dig("levels", k, f"{kind}_paced", "p99_ms"), " ms", times=True)
    ol = "open loop: TransactionEvent every"
    interval = results["plan"].get("open_loop_interval_s")
    row(f"{ol} {interval:g} s: stations", dig("open_loop", "stations"))
    row("  offered/s", dig("open_loop", "offered_per_s"), "/s")
    row("  served/s", dig("open_loop", "served_per_s"), "/s")
    row("  errors", lambda d: _failures(d.get("open_loop")))
    row("  p50 (from the due time)", dig("open_loop", "p50_ms"), " ms", times=True)
    row("  p99 (from the due time)", dig("open_loop", "p99_ms"), " ms", times=True)
    row("  daphne CPU ms per event", dig("open_loop", "server_cpu_ms_per_event"), " ms", times=True)
    row("  PostgreSQL CPU ms per event", dig("open_loop", "postgres_cpu_ms_per_event"), " ms")
    row("realistic traffic on the idle stations: stations", dig("idle", "realistic", "stations"))
    row("  offered/s (TransactionEvent + heartbeat)", dig("idle", "realistic", "offered_per_s"), "/s")
    row("  served/s", dig("idle", "realistic", "served_per_s"), "/s")
    row("  errors", lambda d: _failures(dig("idle", "realistic")(d)))
    row("  p99 (from the due time)", dig("idle", "realistic", "p99_ms"), " ms", times=True)
    row("  TransactionEvent p99", dig("idle", "realistic", "by_action", "TransactionEvent", "p99_ms"), " ms", True)
    row("  heartbeat p99", dig("idle", "realistic", "by_action", "Heartbeat", "p99_ms"), " ms", times=True)
    row("  RSS per station under it", dig("idle", "realistic", "kb_per_station"), " kB", times=True)
    row("  daphne CPU", dig("idle", "realistic", "server_cpu"))
    return rows


def _failures(figures: dict[str, Any] | None) -> int | None:
    return None if not figures else sum(figures.get("errors", {}).values())


def goals(results: dict[str, Any]) -> list[dict[str, str]]:
    """Issue 18's goal figures (bench/figures.py): the same rows as the README's performance table."""
    return [row.as_dict() for row in figures.goal_figures(results)]


def plot(results: dict[str, Any]) -> str:
    series: dict[str, list[tuple[int, float, float]]] = {}
    for name, data in results["servers"].items():
        for mode, key in (("paced", "heartbeat_paced"), ("saturated", "heartbeat")):
            values = []
            for lv, level in sorted(data.get("levels", {}).items(), key=lambda i: int(i[0])):
                f = level.get(key, {})
                if f.get("p99_ms") is not None:
                    values.append((int(lv), f["p50_ms"], f["p99_ms"]))
            if values:
                series[f"{name} {mode}"] = values
    return report.svg_latency_plot(
        series, f"Heartbeat round trip vs stations ({results['mode']} run, {results['date']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts, under 2 minutes")
    parser.add_argument("--smoke", action="store_true", help="a handful of stations: checks the harness itself")
    parser.add_argument("--only", default="", help="comma-separated servers: echo,csms-pg,csms-sqlite,ocpp-lib")
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto", help="auto: full run only")
    parser.add_argument(
        "--csms-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of csms-pg, e.g. CSMS_DB_THREADS=16 or CSMS_MESSAGE_LOG=errors",
    )
    parser.add_argument(
        "--embedded-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of csms-sqlite, e.g. CSMS_SQLITE_SYNCHRONOUS=full",
    )
    parser.add_argument("--out", default="", help="results file (default bench/results/<date>[-quick].json)")
    args = parser.parse_args()
    plan, mode = (SMOKE, "smoke") if args.smoke else (QUICK, "quick") if args.quick else (FULL, "full")
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    profile = args.profile == "yes" or (args.profile == "auto" and mode == "full")
    csms_env = dict(item.split("=", 1) for item in args.csms_env)
    embedded_env = dict(item.split("=", 1) for item in args.embedded_env)
    results = run(plan, mode, only, profile=profile, csms_env=csms_env, embedded_env=embedded_env)
    results["goals"] = goals(results)
    RESULTS.mkdir(exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y-%m-%d") + ("" if mode == "full" else f"-{mode}")
    out = Path(args.out) if args.out else RESULTS / f"{stem}.json"
    out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    out.with_suffix(".svg").write_text(plot(results) + "\n")
    print()
    print(report.table(rows_for(results)))
    print()
    if "command_round_trip" in results:
        crt = results["command_round_trip"]
        text = (
            crt.get("reason")
            if crt.get("status") == report.NA
            else f"p50 {crt.get('p50_ms')} ms, p99 {crt.get('p99_ms')} ms"
        )
        print(f"command round trip (API on daphne B -> station on daphne A): {text}")
    for kind, prof in results.get("profiles", {}).items():
        print(f"profile ({kind} load), busy CPU by area:", ", ".join(f"{k} {v}" for k, v in
              list(prof.get("busy_cpu_by_area", {}).items())[:8]))  # fmt: skip
        print(f"profile ({kind} load), inclusive share of busy CPU:", ", ".join(f"{k} {v}" for k, v in
              prof.get("hot_path_inclusive", {}).items() if v != "0.0 %"))  # fmt: skip
    print()
    print("issue 18 goals, each beside the echo of this run (README table: python -m bench.readme_table <results>):")
    for goal in results["goals"]:
        echo = f"; echo {goal['echo']}" if goal["echo"] else ""
        vs = f" ({goal['vs_echo']})" if goal["vs_echo"] else ""
        print(f"goal: {goal['figure']}: {goal['csms']}{vs}{echo}; goal {goal['goal']}: {goal['verdict']}")
    print(f"\nresults: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out} "
          f"(+ .svg), {results['duration_s']} s")  # fmt: skip


if __name__ == "__main__":
    main()
