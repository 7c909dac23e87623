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
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = done.stdout
    header = next(line for line in table.splitlines() if line.startswith("figure"))
    assert header.split() == ["figure", "echo", "csms-pg", "vs", "echo"]
    heartbeats = next(line for line in table.splitlines() if line.startswith("heartbeats/s @10 (saturated)"))
    assert heartbeats.rstrip().endswith("%")  # the ratio to the echo server of the same run
    assert "TE+MV events/s @10 (saturated)" in table
    assert "command round trip (API on daphne B -> station on daphne A): p50" in table
    assert "goal: heartbeat @10:" in table

    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"
    csms = results["servers"]["csms-pg"]
    assert csms["idle"]["held"] == 20 and csms["idle"]["all_offline_after_s"] is not None
    level = csms["levels"]["10"]
    assert level["boot_storm"]["accepted"] == 10
    assert level["heartbeat"]["ok"] > 0 and level["transaction"]["ok"] > 0
    assert results["servers"]["echo"]["levels"]["10"]["heartbeat"]["ok"] > 0
    assert results["command_round_trip"]["ok"] > 0
    assert out.with_suffix(".svg").read_text().lstrip().startswith("<svg")
