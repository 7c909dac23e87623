"""Group commit A/B: the TransactionEvent + MeterValues closed loop against the echo and the CSMS under several
settings, in one run on one database: events/s, latency and the daphne process's CPU ms per persisted event.

    python -m bench.group_commit --stations 100 --seconds 6 \
        --variant off:CSMS_GROUP_COMMIT_MAX_BATCH=0 --variant on --variant w4:CSMS_GROUP_COMMIT_WRITERS=4

Uses the harness's servers, load workers and fresh database (BENCH_PG_URL, BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import harness, servers
from bench.load import LoadWorkers, raise_nofile_limit


def phase(server: servers.Server, name: str, stations: int, seconds: float, kind: str) -> dict[str, Any]:
    identities = [f"{name[:8]}-{i:05d}" for i in range(stations)]
    workers = LoadWorkers(server.ws_url, identities, processes=1 if stations <= 200 else 2)
    try:
        workers.connect(concurrency=200, attempts=3, timeout_s=150)
        harness.wait_quiet(server)
        workers.load(kind, 1.0)  # warm-up: compiled statements, prepared plans, sessions started
        harness.wait_quiet(server)
        split = harness.CpuSplit(server, workers)
        cpu_before = harness.cpu_seconds(server.process.pid)
        result = workers.load(kind, seconds)
        cpu = harness.cpu_seconds(server.process.pid) - cpu_before
        out = harness.summarise(result) | split.result()
        if result["ok"]:
            out["server_cpu_ms_per_event"] = round(cpu * 1000 / result["ok"], 3)
        return out
    finally:
        workers.close()
        harness.wait_quiet(server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--kind", default="transaction")
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--variant", action="append", default=[], help="name[:KEY=VALUE,KEY=VALUE]")
    args = parser.parse_args()
    raise_nofile_limit()
    variants = [(v.partition(":")[0], v.partition(":")[2]) for v in args.variant] or [("default", "")]
    results: dict[str, Any] = {"stations": args.stations, "seconds": args.seconds, "kind": args.kind}
    with servers.PostgresDatabase(harness.PG_ADMIN_URL) as db:
        env = harness.pg_env(db.url)
        servers.migrate(env)
        runs: list[tuple[str, dict[str, str], str]] = []
        if not args.no_echo:
            runs.append(("echo", env, "bench.echo:application"))
        for name, spec in variants:
            extra = dict(item.split("=", 1) for item in spec.split(",") if item)
            runs.append((name, env | extra, "csms.asgi:application"))
        for name, run_env, app in runs:
            server = servers.start(name, run_env, app=app)
            try:
                started = time.monotonic()
                results[name] = phase(server, name, args.stations, args.seconds, args.kind)
                harness.log(f"{name}: {results[name]} ({time.monotonic() - started:.0f} s)")
            finally:
                server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
