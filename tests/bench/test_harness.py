"""``make bench``'s harness end to end, in its smoke size: servers started as users run them, every phase, the table
with each figure beside the echo baseline and its ratio, the JSON and SVG results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.live


# Every phase of make bench end to end (three servers, a migrated database, the load workers): about a minute on a
# quiet 2-core machine, several on a loaded one; the bound is generous, never a speed assertion.
@pytest.mark.timeout(660)
def test_harness_prints_the_table_with_ratios_and_writes_the_results(tmp_path):
    out = tmp_path / "results.json"
    env = os.environ | {
        "BENCH_PG_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        "BENCH_REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the servers run the real settings, not the tests'
    done = subprocess.run(
        [sys.executable, "-m", "bench.harness", "--smoke", "--only", "echo,csms-pg", "--profile", "no",
         "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout
    header = next(line for line in table.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "echo", "csms-pg", "vs", "echo"]
    heartbeats = next(line for line in table.splitlines() if line.startswith("heartbeats/s @10 (saturated)"))
    assert heartbeats.rstrip().endswith("%")  # the ratio to the echo server of the same run
    assert "TE+MV events/s @10 (saturated)" in table
    assert "TransactionEvents/s @10 (saturated)" in table
    assert "command round trip (API on daphne B -> station on daphne A): p50" in table
    # Issue 18's goal figures, each with its goal and verdict (the README's table is made of the same rows).
    assert "goal: heartbeats/s, 10 stations closed loop, PostgreSQL + Redis: " in table
    assert "goal: 10 stations, a TransactionEvent every 0.5 s each, PostgreSQL + Redis: " in table
    assert [g["goal"] for g in json.loads(out.read_text())["goals"]] == [
        "≥ 50 % of echo",
        "served = offered, p99 ≤ 100 ms, 0 errors",
        "≤ 0.5 ms (PostgreSQL's not counted)",
        "≥ 90 % of echo",
        "p50 ≤ 20 ms",
        "p99 ≤ 50 ms (and served = offered)",
        "≤ 60 kB",
    ]

    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    csms = results["servers"]["csms-pg"]
    assert csms["idle"]["held"] == 20 and csms["idle"]["all_offline_after_s"] is not None
    level = csms["levels"]["10"]
    assert level["boot_storm"]["accepted"] == 10
    assert level["heartbeat"]["ok"] > 0 and level["transaction"]["ok"] > 0 and level["te"]["ok"] > 0
    assert level["te"]["server_cpu_ms_per_event"] > 0 and level["te"]["postgres_cpu_ms_per_event"] > 0
    open_loop = csms["open_loop"]
    assert open_loop["offered"] > 0 and open_loop["ok"] + sum(open_loop["errors"].values()) >= 1
    # The sessions were advanced to random points before the phase; where its tail is, by window and by event.
    assert open_loop["advance"]["stations"] == 10
    assert sum(w["n"] for w in open_loop["by_window"].values()) == open_loop["ok"]
    assert sum(k["n"] for k in open_loop["by_kind"].values()) == open_loop["ok"]
    realistic = csms["idle"]["realistic"]
    assert realistic["stations"] == 20 and realistic["offered"] > 0 and realistic["kb_per_station"] is not None
    # Stations charging: each session started before the phase, none during it.
    assert realistic["advance"] == {"sent": 20, "stations": 20} and "Started" not in realistic["by_kind"]
    assert results["servers"]["echo"]["levels"]["10"]["heartbeat"]["ok"] > 0
    assert results["command_round_trip"]["ok"] > 0
    assert out.with_suffix(".svg").read_text().lstrip().startswith("<svg")
