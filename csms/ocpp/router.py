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


@dataclass(frozen=True, slots=True)
class Route:
    """Where a station's action goes: its handler, and whether the handler touches the database."""

    action: str
    handler: Handler
    uses_db: bool = True


_routes: dict[str, Route] = {}


def handles(action: str, *, uses_db: bool = True) -> Callable[[Handler], Handler]:
    """Register the handler of ``action``. ``uses_db=False``: it touches no database, so the consumer may answer in
    the event loop without a thread hop or transaction when nothing else has to be written."""
    if action not in schemas.all_actions():
        raise ValueError(f"{action!r} is not an OCPP 2.0.1 action")

    def register(func: Handler) -> Handler:
        found = _routes.get(action)
        if found is not None and found.handler is not func:
            raise ValueError(f"a handler for {action} is already registered: {found.handler!r}")
        _routes[action] = Route(action, func, uses_db)
        return func

    return register


def route_for(action: str) -> Route:
    """The route of an action, or the OCPP error for an unknown (NotImplemented) or unhandled (NotSupported) one."""
    found = _routes.get(action)
    if found is not None:
        return found
    if action in schemas.all_actions():
        raise errors.NotSupported(f"Action {action} is not supported by this CSMS")
    raise errors.ActionNotImplemented(f"Action {action[:64]} is not known")


def registered_actions() -> frozenset[str]:
    return frozenset(_routes)
