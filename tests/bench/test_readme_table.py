"""``python -m bench.readme_table``: a run's JSON becomes the README's performance table, row for row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import figures, readme_table
from tests.conftest import ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "run-small.json"

EXPECTED_ROWS = """\
| figure | echo (same run) | CSMS | vs echo | goal | verdict |
| --- | --- | --- | --- | --- | --- |
| TransactionEvent persisted/s, 100 stations closed loop, PostgreSQL + Redis | 5,178/s (p99 48.0 ms) | 2,600/s (p99 60.5 ms) | 50 % | ≥ 50 % of echo | met |
| TransactionEvent persisted/s, 100 stations closed loop, embedded default (SQLite) | 5,178/s (p99 48.0 ms) | 250/s (p99 892 ms) | 5 % | ≥ 25 % of echo | not met |
| 400 stations, a TransactionEvent every 2 s each, PostgreSQL + Redis | 4,000 of 4,000 served (200/s offered), p99 3.8 ms, 0 errors | 3,990 of 4,000 served (200/s offered), p99 282 ms, 10 errors | 99.8 % served | served = offered, p99 ≤ 100 ms, 0 errors | not met (at 400; goal at 1,000) |
| 1,000 stations, a TransactionEvent every 2 s each, embedded default (SQLite) | 4,000 of 4,000 served (200/s offered), p99 3.8 ms, 0 errors | 10,000 of 10,000 served (500/s offered), p99 95.0 ms, 0 errors | 100.0 % served | served = offered, p99 ≤ 100 ms, 0 errors | met |
| CPU of the CSMS's daphne per persisted TransactionEvent, 100 stations closed loop, PostgreSQL + Redis | 0.21 ms | 0.42 ms (PostgreSQL beside it: 0.31 ms) | 2.0× | ≤ 0.5 ms (PostgreSQL's not counted) | met |
| CPU of the CSMS's daphne per persisted TransactionEvent, 100 stations closed loop, embedded default (SQLite) | 0.21 ms | 6.5 ms | 31.0× | none (SQLite's work is inside daphne) | — |
| heartbeats/s, 100 stations closed loop, embedded default (SQLite) | 5,742/s (p99 47.0 ms) | 3,406/s (p99 90.0 ms) | 59 % | ≥ 90 % of echo | not met |
| heartbeats/s, 100 stations closed loop, PostgreSQL + Redis | 5,742/s (p99 47.0 ms) | 5,983/s (p99 28.0 ms) | 104 % | ≥ 90 % of echo | met |
| command round trip, API on one daphne, station on another |  | p50 46.3 ms, p99 349 ms |  | p50 ≤ 20 ms | not met |
| 10,000 stations on one process, a TransactionEvent every 60 s and a heartbeat every 300 s each, PostgreSQL + Redis: p99 | 14,990 of 15,000 served (200/s offered), p99 4.2 ms, 0 errors | 15,000 of 15,000 served (200/s offered), p99 38.5 ms, 0 errors | 9.2× | p99 ≤ 50 ms (and served = offered) | met |
| RSS per station, those 10,000 stations under that traffic, PostgreSQL + Redis | 36.0 kB | 72.4 kB | 2.0× | ≤ 60 kB | not met |"""  # noqa: E501


def test_a_small_run_becomes_the_goal_rows_beside_the_echo_with_verdicts():
    results = json.loads(FIXTURE.read_text())
    assert figures.markdown(figures.goal_figures(results)) == EXPECTED_ROWS


def test_a_run_without_the_embedded_server_has_no_embedded_rows():
    results = json.loads(FIXTURE.read_text())
    del results["servers"]["csms-sqlite"]
    rows = figures.goal_figures(results)
    assert [r.figure for r in rows if "SQLite" in r.figure] == []
    assert len(rows) == 7


def test_write_replaces_only_the_marked_block_of_the_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{readme_table.START}\nold table\n{readme_table.END}\n\nafter\n")
    done = subprocess.run(
        [sys.executable, "-m", "bench.readme_table", str(FIXTURE), "--write", str(readme)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    caption = (
        f"quick run of 2026-12-02 (`{FIXTURE.relative_to(ROOT)}`, 150.2 s) on 2 cores, load average 1.2 at the start; "
        "the CSMS, PostgreSQL and the simulated stations share them. Each figure beside the bare Channels echo "
        "consumer measured in the same run:"
    )
    assert readme.read_text() == (
        f"# Title\n\nbefore\n\n{readme_table.START}\n{caption}\n\n{EXPECTED_ROWS}\n{readme_table.END}\n\nafter\n"
    )
