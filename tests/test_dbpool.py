"""csms.dbpool: the station path's database threads."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync

from csms.dbpool import db
from tests.ocpp_client import run


def test_async_to_sync_in_a_database_thread_runs_on_the_callers_event_loop() -> None:
    """A command handed to a station's channel or an outcome published from a database thread reuses the
    caller's event loop (and its channel-layer connections) instead of a new loop, and a new Redis connection,
    per call."""

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    async def scenario() -> tuple[asyncio.AbstractEventLoop, list[asyncio.AbstractEventLoop]]:
        ran_on = [await db(lambda: async_to_sync(running_loop)())() for _ in range(3)]
        return asyncio.get_running_loop(), ran_on

    caller, ran_on = run(scenario())
    assert ran_on == [caller, caller, caller]
    # Another event loop later (a test's, a restarted server's): its own, not the first one's.
    second, ran_on = run(scenario())
    assert second is not caller and ran_on == [second, second, second]
