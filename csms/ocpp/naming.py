"""snake_case <-> camelCase for OCPP payloads, by an exact table built from the official schemas' property names.

A heuristic (like ``ocpp.charge_point.snake_to_camel_case``) gets names such as ``responderURL`` wrong; the
table is exact and its inverse is checked to be unambiguous.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from .schemas import _schema_dir

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """``evseId`` -> ``evse_id``, ``responderURL`` -> ``responder_url``."""
    return _BOUNDARY.sub("_", name).lower()


def _property_names(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        into.update(node.get("properties", {}))
        for value in node.values():
            _property_names(value, into)
    elif isinstance(node, list):
        for value in node:
            _property_names(value, into)


@cache
def camel_by_snake() -> dict[str, str]:
    names: set[str] = set()
    for entry in _schema_dir().iterdir():
        if entry.name.endswith(".json"):
            _property_names(json.loads(entry.read_text(encoding="utf-8")), names)
    table: dict[str, str] = {}
    for name in sorted(names):
        key = snake(name)
        if table.get(key, name) != name:
            raise RuntimeError(f"OCPP property names {table[key]!r} and {name!r} share the snake_case {key!r}")
        table[key] = name
    return table


def to_camel(data: Any) -> Any:
    """Keys of every nested dict to the schemas' camelCase; unknown keys are kept as given (validation judges)."""
    if isinstance(data, dict):
        table = camel_by_snake()
        return {table.get(k, k): to_camel(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_camel(v) for v in data]
    return data


def to_snake(data: Any) -> Any:
    if isinstance(data, dict):
        return {snake(k): to_snake(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_snake(v) for v in data]
    return data
