"""The embedded default's SQLite pragmas, one step at a time, on the embedded TransactionEvent figure:

    python -m bench.sqlite_tuning [--rounds 2] [--seconds 5] [--stations 100] [--out bench/results/<file>.json]

Each configuration is the embedded default as ``make run`` starts it (scripts/run_embedded.py: daphne on SQLite,
private Redis, worker, beat), on a copy of one migrated database, 100 stations sending TransactionEvents (each with
its meter values) closed loop. The steps are cumulative, from main's pragmas to the new defaults (csms/sqlite.py),
then synchronous=FULL on top; the rounds are interleaved so that the box's drift spreads over all of them. The echo
consumer's figure of the same run is measured first and last.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import servers
from .harness import PG_ADMIN_URL, CpuSplit, log, pg_env, sqlite_env, summarise, wait_quiet, with_cpu_per_event
from .load import LoadWorkers, raise_nofile_limit

MAIN = "cache_size=-2000;mmap_size=0;temp_store=DEFAULT;wal_autocheckpoint=1000;journal_size_limit=-1"
STEPS: list[tuple[str, dict[str, str]]] = [
    (
        "main (WAL, synchronous=NORMAL, busy 20 s, connection closed after each message)",
        {"CSMS_SQLITE_PRAGMAS": MAIN, "CSMS_DB_CONN_MAX_AGE": "0"},
    ),  # fmt: skip
    ("+ persistent connections", {"CSMS_SQLITE_PRAGMAS": MAIN}),
    ("+ cache_size 32 MiB", {"CSMS_SQLITE_PRAGMAS": MAIN.replace("cache_size=-2000", "cache_size=-32768")}),
    (
        "+ mmap_size 256 MiB",
        {"CSMS_SQLITE_PRAGMAS": "temp_store=DEFAULT;wal_autocheckpoint=1000;journal_size_limit=-1"},
    ),
    ("+ temp_store MEMORY", {"CSMS_SQLITE_PRAGMAS": "wal_autocheckpoint=1000;journal_size_limit=-1"}),
    ("+ wal_autocheckpoint 4000, journal_size_limit 64 MiB (the new default)", {}),
    ("+ 2 database threads instead of CPUs + 4", {"CSMS_DB_THREADS": "2"}),
    ("+ 1 database thread", {"CSMS_DB_THREADS": "1"}),
    ("the new default with synchronous=FULL", {"CSMS_SQLITE_SYNCHRONOUS": "full"}),
]


def measure(server: servers.Server, name: str, stations: int, seconds: float, tries: int) -> list[dict[str, Any]]:
    workers = LoadWorkers(server.ws_url, [f"tune-{i:05d}" for i in range(stations)], processes=1)
    try:
        workers.connect(concurrency=200, attempts=3, timeout_s=150)
        out = []
        for _ in range(tries):
            wait_quiet(server, 20)
            split = CpuSplit(server, workers)
            figures = with_cpu_per_event(summarise(workers.load("te", seconds)) | split.result())
            log(f"{name}: {figures['per_s']}/s p99 {figures['p99_ms']} ms, {figures.get('server_cpu_ms_per_event')} ms")
            out.append(figures)
        return out
    finally:
        workers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--steps", default="", help="comma-separated step numbers (0 = main), default all")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    steps = [STEPS[int(i)] for i in args.steps.split(",")] if args.steps else STEPS
    raise_nofile_limit()
    template = Path(tempfile.mkdtemp(prefix="csms-bench-sqlite-template-"))
    servers.migrate(sqlite_env() | {"CSMS_VAR_DIR": str(template)})
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "steps": {}, "echo": []}
    started = time.monotonic()
    with servers.PostgresDatabase(PG_ADMIN_URL) as db:

        def echo() -> None:
            server = servers.start("echo", pg_env(db.url), app="bench.echo:application")
            try:
                results["echo"] += measure(server, "echo", args.stations, args.seconds, 1)
            finally:
                server.stop()

        echo()
        for _ in range(args.rounds):
            for label, extra in steps:
                env = sqlite_env(extra)
                shutil.copy(template / "csms.sqlite3", Path(env["CSMS_VAR_DIR"]) / "csms.sqlite3")
                server = servers.start_embedded("csms-sqlite", env)
                try:
                    results["steps"].setdefault(label, []).extend(
                        measure(server, label, args.stations, args.seconds, 2)
                    )
                finally:
                    server.stop()
                    shutil.rmtree(env["CSMS_VAR_DIR"], ignore_errors=True)
        echo()
    shutil.rmtree(template, ignore_errors=True)
    echo_rate = statistics.median(f["per_s"] for f in results["echo"])
    results["duration_s"] = round(time.monotonic() - started, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"\nTransactionEvent/s, {args.stations} stations closed loop, embedded default (echo: {echo_rate:,.0f}/s)")
    for label, runs in results["steps"].items():
        rates = [f["per_s"] for f in runs]
        cpu = [f["server_cpu_ms_per_event"] for f in runs if "server_cpu_ms_per_event" in f] or [0.0]
        p99 = [f["p99_ms"] for f in runs if f["p99_ms"] is not None] or [0.0]
        print(
            f"  {label}: median {statistics.median(rates):,.0f}/s ({statistics.median(rates) / echo_rate * 100:.1f} %"
            f" of echo; runs {', '.join(f'{r:,.0f}' for r in rates)}), p99 median {statistics.median(p99):,.0f} ms,"
            f" daphne CPU {statistics.median(cpu):.2f} ms per event"
        )


if __name__ == "__main__":
    main()
