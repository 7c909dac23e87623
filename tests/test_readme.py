"""The README's map of the code stays true: every OCPP functional block has a row, every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = "ABCDEFGHIJKLMNOP"


def _block_rows() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## How it works") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| ([A-P]) [^|]+\|[^|]+\| (.+) \|$", section, flags=re.M)
    return rows


def test_every_functional_block_names_its_app_and_module():
    assert sorted({block for block, _ in _block_rows()}) == list(BLOCKS)


def test_every_module_the_block_table_names_as_built_exists():
    named = []
    for _, where in _block_rows():
        built = re.sub(r"\*[^*]*\*", "", where)  # planned homes are in italics
        named += re.findall(r"`([a-z_/]+(?:\.py|/))`", built)
    assert named, "the table names no module"
    missing = [path for path in named if not (ROOT / path).exists()]
    assert missing == []
