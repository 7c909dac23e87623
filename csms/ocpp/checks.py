"""Checks of a CALL's values beyond its schema, shared by the apps' handlers: each raises the OCPP error the
station should get, instead of a database error that would become an InternalError it retries forever."""

from __future__ import annotations

from typing import Any

from csms.timeutil import parse_ocpp

from . import errors

INT32_MAX = 2**31 - 1


def require_range(minimum: int, **values: int | None) -> None:
    """The schemas type ids, counts and sequence numbers as unbounded integers; negative ones are meaningless where
    ``minimum`` is 0, and values beyond 32 bits fit no column."""
    for name, value in values.items():
        if value is None:
            continue
        if value < minimum:
            raise errors.PropertyConstraintViolation(
                f"{name} must be {minimum} or more, got {value}", {"path": name, "keyword": "minimum"}
            )
        if value > INT32_MAX:
            raise errors.PropertyConstraintViolation(
                f"{name} must be at most {INT32_MAX}, got {value}", {"path": name, "keyword": "maximum"}
            )


def require_timestamps(payload: dict[str, Any]) -> None:
    """Lenient stations get badly formatted date-times past the schema; one we cannot read at all is refused here
    (a PropertyConstraintViolation)."""
    paths = [("timestamp", payload.get("timestamp"))]
    paths += [(f"meterValue/{i}/timestamp", mv["timestamp"]) for i, mv in enumerate(payload.get("meterValue") or [])]
    for path, value in paths:
        if value is None:
            continue
        try:
            parse_ocpp(value)
        except ValueError:
            raise errors.PropertyConstraintViolation(
                f"{path}: {value[:40]!r} is not a date-time", {"path": path, "keyword": "format"}
            ) from None
