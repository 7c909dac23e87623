"""A daphne process's life around its stations: its lease (stations/leases.py) taken when the server starts and
renewed from its event loop, and its graceful shutdown.

Hooked into daphne's ``Server`` when the ASGI application is loaded (``daphne_lifecycle_install``, called from
csms/asgi.py), so that every way of starting daphne (``make run``, ``make cluster``, docker-compose, the tests)
gets it without a launcher of its own. Daphne has no ASGI lifespan; its SIGTERM/SIGINT handling is Twisted's: the
reactor stops and fires its "before shutdown" triggers, the one of daphne cancelling every application. Ours runs
first and that one only after it (``kill_all_applications`` is wrapped):

1. stop listening (a load balancer's next connection goes to another process);
2. every station's consumer is sent ``station.going_away`` on its own channel, so it handles it after the frame
   it is busy with (a CALL whose handler runs in a database thread is answered first), then closes with 1001;
3. wait until every one has recorded its close, at most ``CSMS_SHUTDOWN_TIMEOUT_S``;
4. write the buffered message-log rows; release the lease (what is still open is recorded closed, its commands
   failed); then daphne cancels what is left and the process exits (status 0).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any, Protocol

from django.conf import settings
from django.db import connection

from csms.dbpool import db

from . import leases, message_log

logger = logging.getLogger(__name__)


class StationSocket(Protocol):
    channel_name: str
    identity: str

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...


class _Life:
    """The process's lifecycle state (one daphne process, one event loop)."""

    def __init__(self) -> None:
        self.process_id: int | None = None
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.consumers: set[StationSocket] = set()
        self.draining = False
        self.all_closed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.background: set[asyncio.Task[None]] = set()
        self.healthy_since = time.monotonic()


_life = _Life()


# --- consumers (stations/consumers.py) --------------------------------------------------------------------------
def consumer_opened(consumer: StationSocket) -> None:
    _life.consumers.add(consumer)
    _life.all_closed.clear()
    if _life.draining:  # its handshake finished while the process was stopping: it goes too
        task = asyncio.get_running_loop().create_task(_going_away(consumer))
        _life.background.add(task)  # a reference until it is done (the loop keeps only a weak one)
        task.add_done_callback(_life.background.discard)


def consumer_closed(consumer: StationSocket) -> None:
    _life.consumers.discard(consumer)
    if not _life.consumers:
        _life.all_closed.set()


async def _going_away(consumer: StationSocket) -> None:
    """Ask the consumer to close (1001) once it has handled what it is busy with: a message on its own channel
    comes after the frame it is handling (a consumer handles one message at a time)."""
    from channels.layers import get_channel_layer

    try:
        layer = get_channel_layer()
        assert layer is not None
        await layer.send(consumer.channel_name, {"type": "station.going_away"})
    except Exception:  # the channel layer is away: close at once
        logger.exception("station %s: could not queue its going-away close; closing now", consumer.identity)
        await consumer.close(code=leases.CLOSE_GOING_AWAY)


# --- the lease --------------------------------------------------------------------------------------------------
def _register_sync() -> None:
    """At the server's start, before its reactor runs (nothing runs in the loop yet: blocking is fine)."""
    try:
        _life.process_id = leases.process_register(hostname=_life.hostname, pid=_life.pid)
    except Exception:  # the database away at start: the lease loop registers it later
        logger.exception("could not register the server process; retrying from the lease loop")
    finally:
        connection.close()  # the main thread becomes the event loop's: it must not keep a connection


async def _renew_once() -> None:
    if _life.process_id is None:
        _life.process_id = await db(leases.process_register)(hostname=_life.hostname, pid=_life.pid)
        return
    try:
        await db(leases.process_renew)(process_id=_life.process_id, hostname=_life.hostname, pid=_life.pid)
    except leases.LeaseLost:
        # This process stalled longer than its lease and another ended it: its stations were recorded offline.
        # Take a new lease and make them reconnect, so that what the database says of them is true again.
        logger.error("lease #%s was ended by another process: new lease, stations reconnect", _life.process_id)
        _life.process_id = await db(leases.process_register)(hostname=_life.hostname, pid=_life.pid)
        for consumer in list(_life.consumers):
            await _going_away(consumer)


async def lease_loop() -> None:
    """Renew the lease every third of CSMS_PROCESS_LEASE_S; then reap the expired leases of other processes.

    A process reaps only once its own renewals have succeeded for a whole lease: after a database outage every
    live process gets a third of a lease to renew before any of them is taken for dead."""
    while True:
        lease_s = float(settings.CSMS_PROCESS_LEASE_S)
        await asyncio.sleep(lease_s / 3)
        if _life.draining:
            return
        try:
            await _renew_once()
        except Exception:
            logger.exception("could not renew the server process's lease")
            _life.healthy_since = time.monotonic()
            continue
        if time.monotonic() - _life.healthy_since < lease_s:
            continue
        try:
            await db(leases.processes_reap)(exclude_id=_life.process_id)
        except Exception:
            logger.exception("could not reap expired server processes")


def _start() -> None:
    _life.task = asyncio.get_running_loop().create_task(lease_loop())


# --- graceful shutdown ------------------------------------------------------------------------------------------
def _stop_listening() -> None:
    from twisted.internet import reactor, tcp

    for reader in list(reactor.getReaders()):  # type: ignore[misc]
        if isinstance(reader, tcp.Port):  # TCP and UNIX listening sockets
            reader.stopListening()


async def shutdown() -> None:
    """Answer, flush, close (1001), release: see the module's docstring. Bounded by CSMS_SHUTDOWN_TIMEOUT_S."""
    _life.draining = True
    if _life.task is not None:
        _life.task.cancel()
    timeout_s = float(settings.CSMS_SHUTDOWN_TIMEOUT_S)
    logger.warning(
        "shutting down: closing %d station connections (1001 going away), at most %g s", len(_life.consumers), timeout_s
    )
    try:
        _stop_listening()
    except Exception:
        logger.exception("could not stop listening")
    started = time.monotonic()
    if _life.consumers:
        for consumer in list(_life.consumers):
            await _going_away(consumer)
        try:
            await asyncio.wait_for(_life.all_closed.wait(), timeout_s)
        except TimeoutError:
            logger.warning("shutdown: %d stations still open after %g s", len(_life.consumers), timeout_s)
    left_s = max(1.0, timeout_s - (time.monotonic() - started))
    try:
        await asyncio.wait_for(message_log.writer().flush(), left_s)
    except Exception:
        logger.exception("shutdown: could not write the buffered message log")
    if _life.process_id is not None:
        try:
            left = await asyncio.wait_for(db(leases.process_release)(process_id=_life.process_id), left_s)
            logger.warning(
                "shutdown: lease #%s released (%d connections and %d commands still open were ended)",
                _life.process_id,
                left.connections,
                left.commands,
            )
        except Exception:  # the others reap it once it expires
            logger.exception("shutdown: could not release lease #%s", _life.process_id)


def daphne_lifecycle_install() -> None:
    """Wrap daphne's ``Server.run`` (register the lease, start its loop) and ``kill_all_applications`` (the
    graceful shutdown first). A no-op outside daphne, and when already installed."""
    try:
        from daphne.server import Server
        from twisted.internet import defer
    except ImportError:  # not running under daphne
        return
    if getattr(Server.run, "_csms_lifecycle", False):
        return
    run, kill_all = Server.run, Server.kill_all_applications

    def run_with_lease(self: Any) -> None:
        from twisted.internet import reactor

        _register_sync()
        reactor._asyncioEventloop.call_soon(_start)  # once the loop runs
        run(self)

    def kill_all_after_shutdown(self: Any) -> defer.Deferred[Any]:
        from twisted.internet import reactor

        future = asyncio.ensure_future(shutdown(), loop=reactor._asyncioEventloop)
        done: defer.Deferred[Any] = defer.Deferred.fromFuture(future)
        done.addErrback(lambda failure: logger.error("graceful shutdown failed: %s", failure.getTraceback()))
        done.addBoth(lambda _: kill_all(self))
        return done

    run_with_lease._csms_lifecycle = True  # type: ignore[attr-defined]
    Server.run = run_with_lease
    Server.kill_all_applications = kill_all_after_shutdown
    _going_away_code_allow()


def _going_away_code_allow() -> None:
    """Let the application close a socket with 1001 (going away): RFC 6455 has an endpoint send it when it goes
    down, but autobahn's ``sendClose`` takes only 1000 and 3000-4999 from applications, so daphne's
    ``serverClose`` raises on it. The close frame is sent as ``sendClose`` would (its closing handshake, with the
    handshake timeout), only without that check."""
    from daphne.ws_protocol import WebSocketProtocol

    close = WebSocketProtocol.serverClose

    def server_close(self: Any, code: int | None = None) -> None:
        if code == leases.CLOSE_GOING_AWAY:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            close(self, code)

    WebSocketProtocol.serverClose = server_close
