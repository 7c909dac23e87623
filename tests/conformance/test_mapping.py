"""The conformance tables name tests that exist: a renamed or deleted test breaks its row, not silently the claim."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ROW = re.compile(r"^\| (TC_[A-P]_\d{2,3}_CSMS)\b[^|]*\|([^|]+)\|([^|]+)\|\s*$", re.M)
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _tables() -> list[Path]:
    return sorted(HERE.glob("TC_*.md"))


@functools.cache  # the tables name ~400 tests in a few dozen files: each file parsed once
def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            names.add(node.name)
    return names


def test_every_table_has_rows_and_every_named_test_exists():
    missing: list[str] = []
    for table in _tables():
        rows = ROW.findall(table.read_text())
        assert rows, f"{table.name} has no case rows"
        for case, _what, ours in rows:
            ours = ours.strip()
            if ours == "—":
                continue
            named = NAMED_TEST.findall(ours)
            assert named, f"{table.name} {case}: no test named in {ours!r}"
            for path, name in named:
                file = ROOT / path
                if not file.exists() or name not in _test_names(file):
                    missing.append(f"{table.name} {case}: {path}::{name}")
    assert missing == []


def test_a_case_is_listed_once_per_table():
    for table in _tables():
        cases = [case for case, _, _ in ROW.findall(table.read_text())]
        assert len(cases) == len(set(cases)), table.name
