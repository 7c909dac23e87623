"""The thread pool that runs the station path's database work (ORM code) off the event loop.

Not Channels' single shared sync thread: stations must not queue behind each other, and not asgiref's SyncToAsync
per call, whose machinery (context propagation, thread sensitivity) cost a measurable share of every message.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from csms import metrics

P = ParamSpec("P")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The process's pool: ``CSMS_DB_THREADS`` threads, each with its own database connection."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=settings.CSMS_DB_THREADS, thread_name_prefix="csms-db")
    return _pool


def _in_db_thread(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    submitted: float = 0.0,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Any:
    if submitted:
        metrics.DB_POOL_WAIT_SECONDS.observe(time.monotonic() - submitted)
    if loop is not None:
        # What SyncToAsync tells its threads: an ``async_to_sync`` here (a command handed to a station's channel,
        # an outcome published after commit) runs on the caller's event loop and its channel-layer connections.
        # Without it asgiref makes a new event loop per call, and channels_redis a new Redis connection for it.
        SyncToAsync.threadlocal.main_event_loop = loop
        SyncToAsync.threadlocal.main_event_loop_pid = os.getpid()
    # What Channels' database_sync_to_async does around a call: drop connections that broke or outlived
    # CONN_MAX_AGE, so a restarted database does not leave a thread failing forever.
    close_old_connections()
    try:
        return func(*args, **kwargs)
    finally:
        close_old_connections()


def db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``await db(func)(*args, **kwargs)``: run sync ORM code in the pool and await its result."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        # The caller's context (its log fields: station, message id, action) goes with the work to the thread.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        result: R = await loop.run_in_executor(
            pool(), functools.partial(context.run, _in_db_thread, func, args, kwargs, time.monotonic(), loop)
        )
        return result

    return call


# PostgreSQL's SQLSTATEs for a server going away or not taking connections (class 08 is connection exceptions):
# admin_shutdown, crash_shutdown, cannot_connect_now.
_UNREACHABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be reached (stopped, restarting, connection lost), not
    that this statement failed (a constraint, a deadlock, a lock timeout: those have their own SQLSTATE)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("sqlite3"):
        return False  # SQLite's OperationalErrors ("database is locked") are about the statement
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES


_auth_pool: ThreadPoolExecutor | None = None


def auth_pool() -> ThreadPoolExecutor:
    """``CSMS_AUTH_THREADS`` threads for slow password checks (CPU, no database): a flood of them queues here,
    never in front of other stations' database work."""
    global _auth_pool
    if _auth_pool is None:
        _auth_pool = ThreadPoolExecutor(max_workers=settings.CSMS_AUTH_THREADS, thread_name_prefix="csms-auth")
    return _auth_pool


def auth(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``await auth(func)(*args, **kwargs)``: run CPU-bound code without database access in the auth threads."""

    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        result: R = await asyncio.get_running_loop().run_in_executor(
            auth_pool(), functools.partial(func, *args, **kwargs)
        )
        return result

    return call
