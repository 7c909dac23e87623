"""Action -> handler registry. Apps register sync handlers (run in a worker thread inside one DB transaction).

@handles("Heartbeat")
def heartbeat(ctx: CallContext, payload: dict) -> dict: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors, schemas


@dataclass(slots=True)
class CallContext:
    """What a handler knows about the CALL it answers."""

    station_id: int
    identity: str
    unique_id: str
    action: str
    connection_id: int | None = None
    violations: list[schemas.Violation] = field(default_factory=list)


Handler = Callable[[CallContext, dict[str, Any]], dict[str, Any]]
_registry: dict[str, Handler] = {}
_no_db: set[str] = set()


def handles(action: str, *, uses_db: bool = True) -> Callable[[Handler], Handler]:
    """Register the handler of ``action``. ``uses_db=False``: it touches no database, so the consumer may answer in
    the event loop without a thread hop or transaction when nothing else has to be written."""
    if action not in schemas.all_actions():
        raise ValueError(f"{action!r} is not an OCPP 2.0.1 action")

    def register(func: Handler) -> Handler:
        if action in _registry and _registry[action] is not func:
            raise ValueError(f"a handler for {action} is already registered: {_registry[action]!r}")
        _registry[action] = func
        if not uses_db:
            _no_db.add(action)
        return func

    return register


def handler_for(action: str) -> Handler:
    """The handler for an action, or the OCPP error for an unknown (NotImplemented) or unhandled (NotSupported) one."""
    func = _registry.get(action)
    if func is not None:
        return func
    if action in schemas.all_actions():
        raise errors.NotSupported(f"Action {action} is not supported by this CSMS")
    raise errors.NotImplementedError_(f"Action {action[:64]} is not known")


def uses_db(action: str) -> bool:
    return action not in _no_db


def registered_actions() -> frozenset[str]:
    return frozenset(_registry)
