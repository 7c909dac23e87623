"""The README's performance table from one ``make bench`` run:

    python -m bench.readme_table bench/results/<run>.json            # print it (Markdown)
    python -m bench.readme_table bench/results/<run>.json --write README.md

``--write`` replaces what stands between the ``<!-- bench-table:start -->`` and ``<!-- bench-table:end -->`` lines
of the file. The rows are issue 18's goal figures (bench/figures.py), each beside the echo consumer of the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import figures

START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def caption(results: dict[str, Any], source: str) -> str:
    machine = results.get("machine", {})
    load = machine.get("loadavg_at_start") or [None]
    load_text = f", load average {load[0]:.1f} at the start" if isinstance(load[0], (int, float)) else ""
    return (
        f"{results.get('mode', '?')} run of {str(results.get('date', '?'))[:10]} (`{source}`, "
        f"{results.get('duration_s', '?')} s) on {machine.get('cpus', '?')} cores{load_text}; the CSMS, PostgreSQL "
        "and the simulated stations share them. Each figure beside the bare Channels echo consumer measured in the "
        "same run:"
    )


def table(results: dict[str, Any], source: str) -> str:
    return caption(results, source) + "\n\n" + figures.markdown(figures.goal_figures(results))


def replace_between_markers(text: str, block: str) -> str:
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"the file has no {START} ... {END} block")
    return f"{head}{START}\n{block}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a make bench results file (bench/results/<run>.json)")
    parser.add_argument("--write", default="", metavar="FILE", help="replace the marked table in FILE (README.md)")
    args = parser.parse_args()
    path = Path(args.results)
    results = json.loads(path.read_text())
    source = path.resolve().relative_to(Path.cwd()) if path.resolve().is_relative_to(Path.cwd()) else path
    block = table(results, str(source))
    if args.write:
        target = Path(args.write)
        target.write_text(replace_between_markers(target.read_text(), block))
        print(f"{target}: performance table from {source}")
    else:
        print(block)


if __name__ == "__main__":
    main()
