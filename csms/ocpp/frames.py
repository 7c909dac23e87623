"""OCPP-J frames: ``[2, id, action, payload]``, ``[3, id, payload]``, ``[4, id, code, description, details]``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from . import errors

UNKNOWN_MESSAGE_ID = "-1"
MAX_MESSAGE_ID = 36
_ID_PREFIX = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\]{1,36})"')


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: Any

    def to_json(self) -> str:
        return dumps([MessageType.CALL, self.unique_id, self.action, self.payload])


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: Any

    def to_json(self) -> str:
        return dumps([MessageType.CALLRESULT, self.unique_id, self.payload])


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_exception(cls, unique_id: str, exc: errors.OcppError) -> CallError:
        return cls(unique_id, exc.code, exc.description, exc.details)

    def to_json(self) -> str:
        return dumps([MessageType.CALLERROR, self.unique_id, self.code, self.description, self.details])


Frame = Call | CallResult | CallError


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def message_id_hint(text: str) -> str:
    """Best-effort message id from the start of a frame that cannot be parsed whole (e.g. oversize)."""
    match = _ID_PREFIX.match(text[:64])
    return match.group(1) if match else UNKNOWN_MESSAGE_ID


class FrameError(Exception):
    """A frame that cannot be handled; carries the CALLERROR to answer (unique_id may be "-1")."""

    def __init__(self, unique_id: str, error: errors.OcppError) -> None:
        super().__init__(error.description)
        self.unique_id = unique_id
        self.error = error


def _refuse_constant(name: str) -> Any:
    # NaN/Infinity are not JSON (RFC 8259); Python accepts them but PostgreSQL's jsonb does not.
    raise ValueError(f"{name} is not valid JSON")


def parse(text: str) -> Frame:
    """Parse one OCPP-J text frame. Raises :class:`FrameError` with the CALLERROR to send back."""
    try:
        message = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise FrameError(
            message_id_hint(text), errors.RpcFrameworkError(f"Frame is not valid JSON: {exc}"[:255])
        ) from None
    if not isinstance(message, list):
        raise FrameError(UNKNOWN_MESSAGE_ID, errors.RpcFrameworkError("Frame is not a JSON array"))
    if len(message) < 3:
        raise FrameError(
            _id_of(message), errors.RpcFrameworkError(f"Frame has {len(message)} elements; at least 3 expected")
        )
    message_type, unique_id = message[0], message[1]
    if not isinstance(unique_id, str) or not unique_id or len(unique_id) > MAX_MESSAGE_ID:
        raise FrameError(
            UNKNOWN_MESSAGE_ID,
            errors.RpcFrameworkError("Message id must be a non-empty string of at most 36 characters"),
        )
    if type(message_type) is not int:
        raise FrameError(unique_id, errors.RpcFrameworkError("Message type must be an integer"))
    if message_type == MessageType.CALL:
        if len(message) != 4:
            raise FrameError(unique_id, errors.RpcFrameworkError(f"CALL has {len(message)} elements; 4 expected"))
        action, payload = message[2], message[3]
        if not isinstance(action, str) or not action:
            raise FrameError(unique_id, errors.RpcFrameworkError("Action must be a non-empty string"))
        return Call(unique_id, action, payload)
    if message_type == MessageType.CALLRESULT:
        if len(message) != 3:
            raise FrameError(unique_id, errors.RpcFrameworkError(f"CALLRESULT has {len(message)} elements; 3 expected"))
        return CallResult(unique_id, message[2])
    if message_type == MessageType.CALLERROR:
        if len(message) != 5:
            raise FrameError(unique_id, errors.RpcFrameworkError(f"CALLERROR has {len(message)} elements; 5 expected"))
        code, description, details = message[2], message[3], message[4]
        return CallError(
            unique_id,
            code if isinstance(code, str) else str(code),
            description if isinstance(description, str) else str(description),
            details if isinstance(details, dict) else {"value": details},
        )
    raise FrameError(unique_id, errors.MessageTypeNotSupported(f"Message type {message_type} is not supported"))


def _id_of(message: list[Any]) -> str:
    if len(message) >= 2 and isinstance(message[1], str) and 0 < len(message[1]) <= MAX_MESSAGE_ID:
        return message[1]
    return UNKNOWN_MESSAGE_ID
