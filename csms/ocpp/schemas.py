"""Validators compiled once from the official OCPP 2.0.1 JSON schemas shipped by the ``ocpp`` package.

A schema violation maps to the OCPP-J error code of its kind. In lenient mode the tolerable violations (unknown
properties, over-long strings, badly formatted values) are repaired in place and reported, the rest still raise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import jsonschema_rs
from jsonschema import Draft6Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from rfc3339_validator import validate_rfc3339

from . import errors

Kind = Literal["Request", "Response"]

_OCCURRENCE = {"required", "minItems", "maxItems", "minProperties", "maxProperties"}
_TYPE = {"type"}
# Violations a lenient station may commit: the handler can still use the payload once repaired.
TOLERABLE = {"additionalProperties", "maxLength", "format"}


def _schema_dir():  # noqa: ANN202 - importlib.resources Traversable
    return resources.files("ocpp.v201") / "schemas"


@cache
def all_actions() -> frozenset[str]:
    """The 64 actions of OCPP 2.0.1 (both directions)."""
    return frozenset(
        entry.name[: -len("Request.json")] for entry in _schema_dir().iterdir() if entry.name.endswith("Request.json")
    )


@cache
def _schema(action: str, kind: Kind) -> dict[str, Any]:
    return json.loads((_schema_dir() / f"{action}{kind}.json").read_text(encoding="utf-8"))


@cache
def validator(action: str, kind: Kind) -> Draft6Validator:
    """The reference validator: reports every violation with its path (only run when a payload is invalid)."""
    schema = _schema(action, kind)
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema, format_checker=FormatChecker())


def _is_datetime(value: str) -> bool:
    return validate_rfc3339(value.upper())  # the reference validator's own date-time rule


@cache
def fast_validator(action: str, kind: Kind) -> jsonschema_rs.Draft6Validator:
    """The same schema compiled to native code: a yes/no a few hundred times faster, for the hot path (a valid
    payload). Its date-time rule is the reference's, so both accept exactly the same payloads."""
    return jsonschema_rs.Draft6Validator(
        _schema(action, kind), validate_formats=True, formats={"date-time": _is_datetime}
    )


def warm_up() -> None:
    """Compile every validator (called at start-up so the first message pays nothing)."""
    for action in all_actions():
        for kind in ("Request", "Response"):
            validator(action, kind)
            fast_validator(action, kind)


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    path: str
    message: str
    keyword: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message, "keyword": self.keyword}


def _path(error: ValidationError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(root)"


def _code(error: ValidationError) -> str:
    if error.validator in _OCCURRENCE:
        return errors.OccurrenceConstraintViolation.code
    if error.validator in _TYPE:
        return errors.TypeConstraintViolation.code
    return errors.PropertyConstraintViolation.code


_PRIORITY = {
    errors.OccurrenceConstraintViolation.code: 0,
    errors.TypeConstraintViolation.code: 1,
    errors.PropertyConstraintViolation.code: 2,
}


def _flatten(errs: list[ValidationError]) -> list[ValidationError]:
    # anyOf/oneOf wrap the real causes in `context`.
    out: list[ValidationError] = []
    for e in errs:
        if e.context:
            out.extend(_flatten(list(e.context)))
        else:
            out.append(e)
    return out


def _message(error: ValidationError) -> str:
    """jsonschema's message without an object's or array's contents: it starts with the instance's repr, and what
    a station sends inside one may be a secret (a WriteOnly value) that must not reach the log or the CALLERROR."""
    instance = error.instance
    if isinstance(instance, dict | list):
        shown = repr(instance)
        if error.message.startswith(shown):
            return f"an {'object' if isinstance(instance, dict) else 'array'}" + error.message[len(shown) :]
    return error.message


def violations(action: str, kind: Kind, payload: Any) -> list[tuple[Violation, ValidationError]]:
    if fast_validator(action, kind).is_valid(payload):
        return []
    # Invalid (or a value only the native validator refuses, e.g. a float beyond JSON's range): the reference
    # validator decides and explains.
    found = _flatten(list(validator(action, kind).iter_errors(payload)))
    result = [(Violation(_code(e), _path(e), _message(e)[:200], str(e.validator)), e) for e in found]
    result.sort(key=lambda pair: (_PRIORITY[pair[0].code], pair[0].path))
    return result


def _raise_for(violation: Violation, action: str, kind: Kind, count: int) -> None:
    cls = errors.ERRORS_BY_CODE[violation.code]
    more = f" (+{count - 1} more)" if count > 1 else ""
    raise cls(
        f"{action}{kind} {violation.path}: {violation.message}{more}"[: errors.MAX_DESCRIPTION],
        {"path": violation.path, "keyword": violation.keyword},
    )


def validate(action: str, kind: Kind, payload: Any) -> None:
    """Strict validation: raise the OCPP error of the most fundamental violation."""
    if not isinstance(payload, dict):
        raise errors.FormatViolation(f"{action}{kind} payload must be a JSON object, got {type(payload).__name__}")
    found = violations(action, kind, payload)
    if found:
        _raise_for(found[0][0], action, kind, len(found))


def validate_lenient(action: str, kind: Kind, payload: Any) -> tuple[dict[str, Any], list[Violation]]:
    """Lenient validation: returns a repaired copy of the payload and the tolerated violations.

    Raises like :func:`validate` when any violation is not tolerable.
    """
    if not isinstance(payload, dict):
        raise errors.FormatViolation(f"{action}{kind} payload must be a JSON object, got {type(payload).__name__}")
    found = violations(action, kind, payload)
    if not found:
        return payload, []
    fatal = [v for v, _ in found if v.keyword not in TOLERABLE]
    if fatal:
        _raise_for(fatal[0], action, kind, len(fatal))
    repaired = copy.deepcopy(payload)
    for violation, error in found:
        _repair(repaired, violation, error)
    return repaired, [v for v, _ in found]


def _locate(root: Any, path: list[Any]) -> Any:
    node = root
    for key in path:
        node = node[key]
    return node


def _repair(root: dict[str, Any], violation: Violation, error: ValidationError) -> None:
    path = list(error.absolute_path)
    if violation.keyword == "additionalProperties":
        node = _locate(root, path)
        # The schema that failed additionalProperties is an object schema (a mapping): the isinstance narrows its type.
        allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, Mapping) else set()
        for key in [k for k in node if k not in allowed]:
            del node[key]
    elif violation.keyword == "maxLength" and path:
        parent = _locate(root, path[:-1])
        parent[path[-1]] = parent[path[-1]][: error.validator_value]
    # "format": kept as sent; handlers parse values tolerantly.
