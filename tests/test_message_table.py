"""The README's table of the 64 OCPP 2.0.1 messages stays in step with the handler and hook registries."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from csms.ocpp import actions, router, schemas
from stations.commands.hooks import hooks_for

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"`([a-z_]+/[a-z_/0-9]*(?:\.py|/))`")


def _rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("<!-- message-table -->") : text.index("<!-- /message-table -->")]
    lines = [line for line in table.splitlines() if line.startswith("| ")][2:]  # header and rule
    rows: dict[str, list[str]] = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        assert len(cells) == 6, line
        assert cells[0] not in rows, f"{cells[0]} has two rows"
        rows[cells[0]] = cells[1:]
    return rows


def _module_file(func: object) -> str:
    module = sys.modules[getattr(func, "__module__", "")]
    return str(Path(module.__file__ or "").resolve().relative_to(ROOT))


def test_every_message_has_exactly_one_row_with_its_direction():
    rows = _rows()
    assert sorted(rows) == sorted(schemas.all_actions())
    assert len(rows) == 64
    for action, (direction, *_) in rows.items():
        both = action in actions.CS_TO_CSMS and action in actions.CSMS_TO_CS
        expected = "both" if both else "CS→CSMS" if action in actions.CS_TO_CSMS else "CSMS→CS"
        assert direction == expected, action


@pytest.mark.parametrize("action", sorted(actions.CS_TO_CSMS))
def test_a_station_message_names_its_handler_module_or_not_supported(action):
    handled = _rows()[action][1]
    if action in router.registered_actions():
        named = PATH.findall(handled)
        assert named and named[0] == _module_file(router.route_for(action).handler), action
    else:
        assert handled == "NotSupported", f"{action} has no handler: its row must say NotSupported"


@pytest.mark.parametrize("action", sorted(actions.CSMS_TO_CS - actions.CS_TO_CSMS))
def test_a_command_names_the_module_of_its_hooks_or_the_pipeline(action):
    named = PATH.findall(_rows()[action][1])
    assert named, action
    hooks = {_module_file(hook) for hook in hooks_for(action)}
    if hooks:
        assert named[0] in hooks, f"{action}: hooks in {sorted(hooks)}"
    else:
        assert named[0].startswith("stations/commands/"), f"{action} has no hook: only the pipeline handles it"


def test_named_modules_and_test_files_exist():
    missing = []
    for action, (_, handled, _, _, tests) in _rows().items():
        test_files = PATH.findall(tests)
        assert test_files and all(path.startswith("tests/") for path in test_files), action
        missing += [f"{action}: {path}" for path in PATH.findall(handled) + test_files if not (ROOT / path).exists()]
    assert missing == []
