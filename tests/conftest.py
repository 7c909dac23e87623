"""Shared fixtures: live daphne servers on the test database, the ASGI app in process, stations, waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, connections

from tests.ocpp_client import AsgiStation, RawStation

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "test-logs"


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete() -> Iterator[None]:
    """Empty the tables after a transactional test with DELETE instead of TRUNCATE.

    TRUNCATE of the project's ~50 tables takes 1-2 s on a busy 2-core machine (new files for every table), most of
    a typical test's time; DELETE of a test's few rows takes milliseconds. Same outcome: every row gone, sequences
    left as they are (Django's TRUNCATE does not restart them either). The foreign keys Django creates are
    DEFERRABLE INITIALLY DEFERRED, so rows go in any order within the flush's one transaction.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        if not tables or reset_sequences or allow_cascade:
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {self.quote_name(table)}" for table in tables)]

    execute = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        # A live server's buffered writer may commit a row (a message-log row of a connection just closed) after its
        # table's DELETE and before the flush commits: the deferred foreign key check then fails the flush. The
        # flush again deletes that row too (the live servers' late writes are the tests' leftovers, not data).
        from django.db import IntegrityError

        for attempt in range(5):
            try:
                execute(self, sql_list)
                return
            except IntegrityError:
                if attempt == 4:
                    raise
                time.sleep(0.2)

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign,assignment]
    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign,assignment]
    yield
    DatabaseOperations.sql_flush = truncate  # type: ignore[method-assign]
    DatabaseOperations.execute_sql_flush = execute  # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class LiveServer:
    """A daphne process serving the CSMS on the test database, as users run it.

    Its log file is shared by every test using the process: a test gets a ``view`` whose ``log`` starts where the
    file stood when the test took it (see ``csms_server``).
    """

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_start: int = 0  # byte offset in the log file where this view's log begins

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server logged since this view was taken (the whole log for the session's own object)."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def view(self) -> LiveServer:
        """The same server, with a log that starts now."""
        return dataclasses.replace(self, log_start=self.log_path.stat().st_size)

    def station(self, identity: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[RawStation]:
        """``async with server.station(identity) as st``: a station on a real socket."""
        return RawStation.connect(self.ws_url, identity, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_daphne(env_overrides: dict[str, str], name: str) -> LiveServer:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = (
        os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "csms.settings",
            "DATABASE_URL": test_database_url(),
            "CSMS_DB_CONN_MAX_AGE": "0",
            "PYTHONUNBUFFERED": "1",
            # Buffered message log as in production, flushed sooner: a test's rows are all written within a few
            # ms of its last frame, before its tables are truncated (see wait_until_connections_closed).
            "CSMS_MESSAGE_LOG_FLUSH_MS": "20",
        }
        | env_overrides
    )
    env.pop("CSMS_TEST_DB_NAME", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the browser tests' process only, never for servers
    log_path = LOG_DIR / f"daphne-{name}-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--websocket_timeout",
            "-1",
            "--websocket_connect_timeout",
            "30",
            "csms.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(port, process, log_path)
    wait_for_health(server)
    return server


def wait_for_health(server: LiveServer, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"daphne did not start within {timeout_s} s:\n{server.log()}")


@pytest.fixture(scope="session")
def live_servers(django_db_setup: None, django_db_blocker: object) -> Iterator[Callable[..., LiveServer]]:
    """Factory of daphne servers keyed by their environment; each starts once per session."""
    servers: dict[tuple[tuple[str, str], ...], LiveServer] = {}

    def get(name: str = "default", **env: str) -> LiveServer:
        key = (("__name", name), *sorted(env.items()))
        if key not in servers or servers[key].process.poll() is not None:
            servers[key] = start_daphne(env, name)
        return servers[key]

    yield get
    # Signal every server first, then wait: each takes a second or more to shut down (reactor, log flush).
    for server in servers.values():
        server.process.terminate()
    for server in servers.values():
        server.stop()


def wait_until(predicate: Callable[[], object], timeout_s: float = 5, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy (e.g. rows a server writes a little later, like the message log)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


async def in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """ORM work from a scenario: in a thread, closing its connection (the test database is dropped at the end)."""

    def call() -> Any:
        try:
            return func(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(call)


async def wait_until_async(predicate: Callable[[], object], timeout_s: float = 5, interval_s: float = 0.05) -> bool:
    """``wait_until`` from inside a scenario's event loop: the (ORM) predicate runs in a thread."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await in_thread(predicate):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval_s)


def wait_until_connections_closed(timeout_s: float = 10) -> None:
    """Let the servers finish recording closed connections, and write their buffered message-log rows, before the
    test's tables are truncated (a write racing the TRUNCATE can deadlock it and leave the next test dirty)."""
    from stations.models import Connection, MessageLog

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Connection.objects.filter(outcome="accepted", disconnected_at__isnull=True).exists():
            break
        time.sleep(0.05)
    # The log is quiet once its row count holds still for several flush intervals (20 ms on the test servers).
    last, still = -1, 0
    while time.monotonic() < deadline and still < 3:
        count = MessageLog.objects.count()
        still = still + 1 if count == last else 0
        last = count
        time.sleep(0.03)


@pytest.fixture
def csms_server(live_servers: Callable[..., LiveServer], transactional_db: None) -> Iterator[Callable[..., LiveServer]]:
    """``csms_server(name, **env)``: a live server with extra settings, for one test on the test database.

    The test gets its own view of each server, taken the first time it asks for it: ``log()`` then holds only
    what the server logged during this test, not what earlier tests made it write.
    """
    views: dict[tuple[str, tuple[tuple[str, str], ...]], LiveServer] = {}

    def get(name: str = "default", **env: str) -> LiveServer:
        key = (name, tuple(sorted(env.items())))
        if key not in views:
            views[key] = live_servers(name, **env).view()
        return views[key]

    yield get
    wait_until_connections_closed()


@pytest.fixture
def live_server_ws(csms_server: Callable[..., LiveServer]) -> LiveServer:
    """The default live server (unknown stations rejected, strict validation, full message log)."""
    return csms_server()


@dataclass
class AsgiServer:
    """The CSMS's ASGI application (``csms.asgi.application``) run in the test process: no daphne, no socket."""

    application: Any

    def station(self, identity: str, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[AsgiStation]:
        """``async with server.station(identity) as st``: a station connected through a WebsocketCommunicator."""
        return AsgiStation.connect(self.application, identity, **kwargs)


@pytest.fixture
def asgi_server(transactional_db: None, settings: Any) -> Iterator[AsgiServer]:
    """The real ASGI app and station consumer on the test database (PostgreSQL), for tests that check only what a
    station is answered. Transactional: the consumer's database work runs in its own threads and must see the
    rows the test created (and the test the rows it wrote)."""
    from csms.asgi import application

    # Log rows committed with their frame, before the consumer reads the next one: nothing is left to write in the
    # background when the test's event loop ends (the live servers flush every 20 ms instead).
    settings.CSMS_MESSAGE_LOG_FLUSH_MS = 0
    # The consumer's worker threads then close their connection after each call, as on the live servers: none is
    # left open when the test database is dropped.
    db_settings = connections["default"].settings_dict
    conn_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0
    # A channel layer of its own: each test runs its scenario on a new event loop, and a layer that another test's
    # loop used holds locks bound to that loop.
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield AsgiServer(application)
    channel_layers.backends.clear()

    db_settings["CONN_MAX_AGE"] = conn_max_age


@pytest.fixture
def station_factory(transactional_db: None) -> Callable[..., object]:
    from stations.services import station_register

    def make(identity: str = "CS-1", **kwargs: object) -> object:
        station, _ = station_register(identity=identity, **kwargs)  # type: ignore[arg-type]
        return station

    return make


@pytest.fixture
def db_failure_trigger(transactional_db: None) -> Iterator[Callable[[str], None]]:
    """Make every INSERT into a table fail inside PostgreSQL (a real DB error, not a mock)."""
    tables: list[str] = []

    def install(table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION csms_test_fail() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER csms_test_fail BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION csms_test_fail()"
            )
        tables.append(table)

    yield install
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TRIGGER IF EXISTS csms_test_fail ON {table}")
