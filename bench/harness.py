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

from . import report, servers
from .load import LoadWorkers, raise_nofile_limit

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Plan:
    """What one run measures; quick mode is the same shape with smaller counts and shorter phases."""

    levels: dict[str, list[int]]  # server -> station counts for throughput/latency
    idle: dict[str, int]  # server -> idle connections to hold
    saturated_s: float  # closed-loop phase length
    paced_s: float  # paced phase length
    think_s: float  # each paced station sends one message per think_s
    transaction_paced_at: int  # the level where the paced TransactionEvent phase runs (p99 goal)
    profile_stations: int
    profile_s: float
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)


QUICK = Plan(
    levels={"echo": [100, 400], "csms-pg": [100, 400], "ocpp-lib": [100]},
    idle={"echo": 600, "csms-pg": 600},
    saturated_s=3,
    paced_s=3,
    think_s=1.5,
    transaction_paced_at=400,
    profile_stations=100,
    profile_s=3,
    kinds={"ocpp-lib": ("heartbeat",)},
)
# The harness itself under test (tests/bench): every phase, a handful of stations, seconds.
SMOKE = Plan(
    levels={"echo": [10], "csms-pg": [10]},
    idle={"echo": 20, "csms-pg": 20},
    saturated_s=1,
    paced_s=1,
    think_s=0.5,
    transaction_paced_at=10,
    profile_stations=10,
    profile_s=1,
)
FULL = Plan(
    levels={
        "echo": [100, 1000, 5000],
        "csms-pg": [100, 1000, 5000],
        "csms-sqlite": [100],  # embedded mode is for small sites; 1,000 would push the run past 10 minutes
        "ocpp-lib": [1000],  # compared at the level of the p99 goal; keeps the full run under 10 minutes
    },
    idle={"echo": 10000, "csms-pg": 10000},
    saturated_s=4,
    paced_s=6,
    think_s=4,
    transaction_paced_at=1000,
    profile_stations=100,
    profile_s=4,
    kinds={"ocpp-lib": ("heartbeat",)},
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return out


class CpuSplit:
    """Who burns the 2 cores during a phase: the server, PostgreSQL, the simulated stations."""

    def __init__(self, server: servers.Server, workers: LoadWorkers) -> None:
        self.groups = {
            "server": [server.process.pid],
            "postgres": postgres_pids(),
            "stations": [p.pid for p in workers.procs],
        }
        self.before = {k: cpu_by_pid(v) for k, v in self.groups.items()}
        self.started = time.monotonic()

    def result(self) -> dict[str, str]:
        wall = time.monotonic() - self.started
        out = {}
        for group, pids in self.groups.items():
            # Only processes alive at both ends: a PostgreSQL backend that exited took its counters with it.
            after = cpu_by_pid(pids)
            used = sum(after[pid] - before for pid, before in self.before[group].items() if pid in after)
            out[f"{group}_cpu"] = f"{used / wall * 100:.0f} %"
        return out


def wait_quiet(server: servers.Server, timeout_s: float = 60) -> None:
    """Wait until the server burns < 10 % CPU (e.g. it has recorded the disconnections of the last phase)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.process.poll() is None:
        before = cpu_seconds(server.process.pid)
        time.sleep(0.5)
        if cpu_seconds(server.process.pid) - before < 0.05:
            return


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Throughput of successful round trips and their latency; n/a when the server refused the action."""
    ok, errors = result["ok"], result["errors"]
    out: dict[str, Any] = {
        "stations": result["stations"],
        "ok": ok,
        "errors": errors,
        "seconds": round(result["elapsed_s"], 2),
    }
    if ok == 0 and any(key.endswith(":NotSupported") for key in errors):
        return out | {"per_s": report.NA, "p50_ms": None, "p95_ms": None, "p99_ms": None, "note": "NotSupported"}
    return out | {"per_s": round(ok / result["elapsed_s"], 1)} | report.percentiles(result["latencies"])


def run_level(server: servers.Server, name: str, stations: int, plan: Plan, kinds: tuple[str, ...]) -> dict[str, Any]:
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
            wait_quiet(server)
            split = CpuSplit(server, workers)
            out[kind] = summarise(workers.load(kind, plan.saturated_s)) | split.result()
            log(f"{name} {stations}: {kind} saturated {_brief(out[kind])}")
            paced_tx = stations == plan.transaction_paced_at and name in ("echo", "csms-pg")
            if kind == "heartbeat" or paced_tx:
                out[f"{kind}_paced"] = summarise(workers.load(kind, plan.paced_s, think_s=plan.think_s))
                log(f"{name} {stations}: {kind} paced {_brief(out[f'{kind}_paced'])}")
        return out
    finally:
        workers.close()
        wait_quiet(server)


def _brief(figures: dict[str, Any]) -> str:
    keys = ("per_s", "p50_ms", "p99_ms", "errors", "server_cpu", "postgres_cpu", "stations_cpu")
    return " ".join(f"{k}={figures.get(k)}" for k in keys)


def online_count(db_url: str, prefix: str) -> int:
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM stations_chargingstation WHERE is_online AND identity LIKE %s", [prefix + "%"]
        ).fetchone()
    return int(row[0]) if row else 0


def run_idle(server: servers.Server, name: str, count: int, db_url: str | None = None) -> dict[str, Any]:
    """Hold ``count`` booted, silent stations; RSS growth per connection of the one daphne process. With the
    CSMS's database: all of them then drop at once, and the time until every one is recorded offline."""
    warm = LoadWorkers(server.ws_url, [f"warm-{name[:6]}-{i}" for i in range(20)], processes=1)
    warm.connect()
    warm.close()
    wait_quiet(server)
    before = server.rss_kb()
    identities = [f"idle-{name[:6]}-{i:05d}" for i in range(count)]
    workers = LoadWorkers(server.ws_url, identities, processes=4 if count > 2000 else 2)
    started = time.monotonic()
    try:
        result = workers.connect(concurrency=200, timeout_s=300)
        seconds = time.monotonic() - started
        wait_quiet(server, 20)
        after = server.rss_kb()
    finally:
        workers.close()
        cut_at = time.monotonic()
    offline_s = None
    if db_url is not None:
        prefix = f"idle-{name[:6]}-"
        deadline = cut_at + 120
        while time.monotonic() < deadline and online_count(db_url, prefix):
            time.sleep(0.2)
        offline_s = round(time.monotonic() - cut_at, 1) if not online_count(db_url, prefix) else None
    held = result["accepted"]
    out = {
        "target": count,
        "held": held,
        "errors": result["errors"],
        "connect_s": round(seconds, 1),
        "connects_per_s": round(held / seconds, 1) if seconds else None,
        "rss_before_mb": round(before / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
        "kb_per_connection": round((after - before) / held, 1) if held else None,
    }
    if db_url is not None:
        out["all_offline_after_s"] = offline_s  # None: some still online after 120 s
    log(f"{name}: idle {out}")
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
        server.stop(signal.SIGINT)  # daphne stops its reactor on SIGINT; the wrapper then writes the profile
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
    kinds = plan.kinds.get(name, ("heartbeat", "transaction"))
    result: dict[str, Any] = {"levels": {}}
    if name in plan.idle:  # first, on a fresh process: RSS growth is then the connections' and nothing else's
        result["idle"] = run_idle(server, name, plan.idle[name], db_url)
    for stations in plan.levels.get(name, []):
        result["levels"][str(stations)] = run_level(server, name, stations, plan, kinds)
    return result


def run(
    plan: Plan, mode: str, only: set[str] | None, profile: bool, csms_env: dict[str, str] | None = None
) -> dict[str, Any]:
    nofile = raise_nofile_limit()
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
    }
    started = time.monotonic()
    wanted = [n for n in ("echo", "csms-pg", "csms-sqlite", "ocpp-lib") if n in plan.levels or n in plan.idle]
    wanted = [n for n in wanted if not only or n in only]
    with servers.PostgresDatabase(PG_ADMIN_URL) as db:
        env = pg_env(db.url)
        servers.migrate(env)
        csms_pg_env = env | (csms_env or {})
        for name in wanted:
            log(f"--- {name}")
            if name == "csms-sqlite":
                var_dir = tempfile.mkdtemp(prefix="csms-bench-sqlite-")
                sqlite_env = servers.base_env() | {
                    "CSMS_VAR_DIR": var_dir,
                    "CSMS_UNKNOWN_STATION_POLICY": "accept",
                    "CSMS_LOG_LEVEL": "WARNING",
                }
                servers.migrate(sqlite_env)
                server = servers.start(name, sqlite_env)
            elif name == "ocpp-lib":
                server = servers.start_ocpp_baseline(env)
            else:
                if name == "echo":
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
            for kind in ("heartbeat", "transaction"):
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
    for kind, label in (("heartbeat", "heartbeats"), ("transaction", "TE+MV events")):
        for lv in levels:
            k = str(lv)
            row(f"stations up for {label} @{lv}", dig("levels", k, kind, "stations"))
            row(f"{label}/s @{lv} (saturated)", dig("levels", k, kind, "per_s"), "/s")
            row(f"  p99 @{lv} saturated", dig("levels", k, kind, "p99_ms"), " ms", times=True)
            row(f"  paced p50 @{lv}", dig("levels", k, f"{kind}_paced", "p50_ms"), " ms", times=True)
            row(f"  paced p95 @{lv}", dig("levels", k, f"{kind}_paced", "p95_ms"), " ms", times=True)
            row(f"  paced p99 @{lv}", dig("levels", k, f"{kind}_paced", "p99_ms"), " ms", times=True)
    return rows


def _failures(figures: dict[str, Any] | None) -> int | None:
    return None if not figures else sum(figures.get("errors", {}).values())


def goals(results: dict[str, Any]) -> list[str]:
    srv = results["servers"]
    echo, csms = srv.get("echo", {}).get("levels", {}), srv.get("csms-pg", {}).get("levels", {})
    lines = []
    for lv in sorted(set(echo) & set(csms), key=int):
        for kind, target in (("transaction", 0.5), ("heartbeat", 0.8)):
            b, v = echo[lv].get(kind, {}).get("per_s"), csms[lv].get(kind, {}).get("per_s")
            if isinstance(b, float) and isinstance(v, float):
                verdict = "met" if v / b >= target else "NOT met"
                lines.append(f"{kind} @{lv}: {v / b * 100:.0f} % of echo (goal >= {target * 100:.0f} %): {verdict}")
            elif kind in csms[lv]:
                lines.append(f"{kind} @{lv}: n/a ({csms[lv][kind].get('note', 'no data')})")
    p99_level = str(results["plan"]["transaction_paced_at"])
    for kind in ("heartbeat", "transaction"):
        p99 = csms.get(p99_level, {}).get(f"{kind}_paced", {}).get("p99_ms")
        if p99 is not None:
            lines.append(
                f"{kind} paced p99 @{p99_level}: {p99} ms (goal <= 100 ms): {'met' if p99 <= 100 else 'NOT met'}"
            )
        elif f"{kind}_paced" in csms.get(p99_level, {}):
            lines.append(f"{kind} paced p99 @{p99_level}: n/a")
    idle = srv.get("csms-pg", {}).get("idle")
    if idle:
        kb_ok = (idle["kb_per_connection"] or 1e9) <= 60
        if idle["target"] >= 10000:
            verdict = "met" if kb_ok and idle["held"] >= 10000 else "NOT met"
        else:
            verdict = ("kB goal met" if kb_ok else "kB goal NOT met") + "; the 10,000 count needs the full run"
        lines.append(
            f"idle: {idle['held']} held, {idle['kb_per_connection']} kB each (goal >= 10,000 and <= 60 kB): {verdict}"
        )
    return lines


def plot(results: dict[str, Any]) -> str:
    series: dict[str, list[tuple[int, float, float]]] = {}
    for name, data in results["servers"].items():
        for mode, key in (("paced", "heartbeat_paced"), ("saturated", "heartbeat")):
            values = []
            for lv, figures in sorted(data.get("levels", {}).items(), key=lambda i: int(i[0])):
                f = figures.get(key, {})
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
    parser.add_argument("--out", default="", help="results file (default bench/results/<date>[-quick].json)")
    args = parser.parse_args()
    plan, mode = (SMOKE, "smoke") if args.smoke else (QUICK, "quick") if args.quick else (FULL, "full")
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    profile = args.profile == "yes" or (args.profile == "auto" and mode == "full")
    csms_env = dict(item.split("=", 1) for item in args.csms_env)
    results = run(plan, mode, only, profile=profile, csms_env=csms_env)
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
    for line in results["goals"]:
        print("goal:", line)
    print(f"\nresults: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out} "
          f"(+ .svg), {results['duration_s']} s")  # fmt: skip


if __name__ == "__main__":
    main()
