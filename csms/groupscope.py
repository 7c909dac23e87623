"""The write-behind buffer of one group commit (``stations.calls.calls_commit_group``).

Inside a group, the usual TransactionEvent (an in-order Updated of a running session) and MeterValues need no
statement of their own: their transaction rows were read and locked for the whole group at its start (one SELECT,
primary-key order), and their writes (the event row, the samples, the transaction's new state) wait here to be
sent as one multi-row statement per table, just before the group's COMMIT. A group of 64 such events then costs
four statements instead of about 260.

Why this is safe:
- a station's CALLs are applied in order and its rows are only written by its own CALLs (under the row lock), so
  the only reader that could miss a buffered write is a later CALL of the same station in the same group: any CALL
  of a station with buffered writes flushes the buffer first (``flush_for``), unless its handler knows it reads none
  of them (the fast path below);
- whether another station's CALL is earlier in the same group or was committed by an earlier group is a matter
  of timing, so no CALL may rely on seeing it: the buffer changes nothing another station's CALL can observe;
- the buffer is flushed inside the group's transaction, before COMMIT: a CALLRESULT still goes out only after its
  rows are committed; a flush that fails (a constraint) fails the group, whose CALLs are then applied again each in
  a transaction of its own (``calls_commit_group``), without any buffer.

Outside a group (a CALL's own transaction, SQLite's single writer without group commit) there is no scope and every
write is sent at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from csms import metrics

Flusher = Callable[[list[Any]], None]
# action -> preparer(scope, [(station_id, payload), ...]) run once at the start of a group (e.g. one SELECT ... FOR
# UPDATE of every transaction the group's TransactionEvents name).
Preparer = Callable[["GroupScope", Sequence[tuple[int, dict[str, Any]]]], None]
_preparers: dict[str, Preparer] = {}
# Actions whose handlers call ``flush_for`` themselves before reading what they need (the others: the group flushes
# the station's buffered writes before applying them).
_aware: set[str] = set()
_local = threading.local()


class GroupScope:
    def __init__(self) -> None:
        self._buffers: dict[str, tuple[Flusher, dict[Any, Any]]] = {}  # kind -> (flush, key -> item), in order
        self._stations: set[int] = set()  # stations with buffered writes
        self.cache: dict[Any, Any] = {}  # preparers' reads (e.g. locked transaction rows), by key

    def defer(self, kind: str, station_id: int, item: Any, flush: Flusher, key: Any = None) -> None:
        """Buffer ``item`` for ``flush(items)`` (one call per kind, kinds in the order first deferred); an item with
        the ``key`` of a buffered one replaces it (the same row written twice: its latest state)."""
        _, items = self._buffers.setdefault(kind, (flush, {}))
        items[key if key is not None else (object(),)] = item
        self._stations.add(station_id)

    def pending_for(self, station_id: int) -> bool:
        return station_id in self._stations

    def flush(self) -> None:
        """Send every buffered write now (inside the group's transaction)."""
        if not self._stations:
            return
        buffers, self._buffers, self._stations = self._buffers, {}, set()
        for flush, items in buffers.values():
            if items:
                flush(list(items.values()))

    def flush_for(self, station_id: int) -> None:
        if station_id in self._stations:
            metrics.GROUP_SCOPE_FLUSHES.labels(reason="same_station").inc()
            self.flush()


def current() -> GroupScope | None:
    """The scope of the group being applied on this database thread, or None (writes go out at once)."""
    return getattr(_local, "scope", None)


def flush_for(station_id: int) -> None:
    """Before a statement that may read what ``station_id``'s earlier CALLs of this group buffered."""
    scope = current()
    if scope is not None:
        scope.flush_for(station_id)


def preparer(action: str) -> Callable[[Preparer], Preparer]:
    """Register what a group does once for all its CALLs of ``action`` before applying them."""

    def register(func: Preparer) -> Preparer:
        _preparers[action] = func
        return func

    return register


def buffer_aware(*actions: str) -> None:
    """Declare that the handlers of ``actions`` buffer their writes and flush what they read themselves."""
    _aware.update(actions)


def before_call(action: str, station_id: int) -> None:
    """In a group, before a CALL's handler: a handler that does not manage the buffer sees its station's earlier
    writes (flushed)."""
    scope = current()
    if scope is not None and action not in _aware:
        scope.flush_for(station_id)


@contextmanager
def group_scope(items: Sequence[tuple[str, int, dict[str, Any]]]) -> Iterator[GroupScope]:
    """The scope of one group attempt, inside its transaction: ``items`` are its CALLs (action, station id,
    payload). The buffer is flushed when the block ends normally, before the COMMIT; on an exception it is dropped
    with the transaction."""
    if current() is not None:
        raise RuntimeError("group scopes do not nest")
    scope = GroupScope()
    _local.scope = scope
    try:
        by_action: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for action, station_id, payload in items:
            if action in _preparers:
                by_action.setdefault(action, []).append((station_id, payload))
        for action, calls in by_action.items():
            _preparers[action](scope, calls)
        yield scope
        scope.flush()
    finally:
        _local.scope = None
