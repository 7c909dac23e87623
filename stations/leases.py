"""Per-process leases: what a daphne process holds (its stations' connections, the commands on them) is ended
by the others when it dies, and by itself when it stops.

Each daphne process registers a ``ServerProcess`` row when it starts and renews its lease from its event loop
every third of ``CSMS_PROCESS_LEASE_S`` (csms/lifecycle.py). Every connection it accepts records the row
(``Connection.server_process``); a command records the channel of the connection it went to
(``Command.channel_name``). After each renewal the process also reaps: every other lease that ran out (the process
was SIGKILLed, its host lost) is locked ``FOR UPDATE SKIP LOCKED``, so two live processes never end the same one
twice, and what it left is ended: its commands ``queued`` or ``sent`` ``failed``, its open connections recorded
closed (close code 1006, the reason naming the process), its stations offline unless they reconnected elsewhere.

Lease times are on the database's clock (``Now()``): hosts with skewed clocks agree on what has expired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from . import connections
from .commands import command_finish
from .models import Command, CommandState, Connection, ConnectionEvent, ServerProcess

logger = logging.getLogger(__name__)

# What a station sees when its server process dies: the TCP connection ends without a close frame.
CLOSE_PROCESS_DIED = 1006
CLOSE_GOING_AWAY = 1001  # a graceful shutdown: the station reconnects (to another process behind the balancer)

_current: int | None = None  # this process's lease (ServerProcess pk), once registered


def current_process_id() -> int | None:
    """The lease of the process this code runs in (None outside daphne, or before it registered)."""
    return _current


def _lease() -> timedelta:
    return timedelta(seconds=float(settings.CSMS_PROCESS_LEASE_S))


def process_register(*, hostname: str, pid: int) -> int:
    """Take a new lease for this process; returns its id (also ``current_process_id()`` from now on)."""
    global _current
    process = ServerProcess.objects.create(
        hostname=hostname[:255], pid=pid, lease_until=Now() + _lease(), renewed_at=Now(), started_at=Now()
    )
    _current = process.pk
    logger.info("server process %s:%s registered (lease #%s)", hostname, pid, process.pk)
    return process.pk


class LeaseLost(Exception):
    """Another process ended this process's lease (it was not renewed in time): what it held was cleaned up."""


def process_renew(*, process_id: int, hostname: str, pid: int) -> None:
    """Extend the lease. Raises LeaseLost when another process reaped it meanwhile (this process stalled longer
    than the lease); a lease row that is gone altogether (deleted by hand) is re-created under the same id."""
    renewed = ServerProcess.objects.filter(pk=process_id, ended_at__isnull=True).update(
        renewed_at=Now(), lease_until=Now() + _lease()
    )
    if renewed:
        return
    if ServerProcess.objects.filter(pk=process_id).exists():
        raise LeaseLost(f"lease #{process_id} was ended by another process")
    try:
        with transaction.atomic():
            ServerProcess.objects.create(
                pk=process_id, hostname=hostname[:255], pid=pid, lease_until=Now() + _lease(), renewed_at=Now()
            )
    except IntegrityError:  # re-created meanwhile (a concurrent renewal): it is there now
        pass


@dataclass(frozen=True, slots=True)
class Leftovers:
    connections: int
    commands: int


def _leftovers_end(*, process: ServerProcess, why: str, close_code: int) -> Leftovers:
    """End what ``process`` held, within the caller's transaction (which holds its row locked): the commands on
    its open connections first (as a consumer's own close does), then the connections and their stations."""
    open_connections = list(
        Connection.objects.filter(
            server_process_id=process.pk, outcome=ConnectionEvent.ACCEPTED, disconnected_at__isnull=True
        ).values_list("pk", "channel_name")
    )
    channels = [channel for _, channel in open_connections if channel]
    ended = 0
    if channels:
        stuck = Command.objects.filter(
            channel_name__in=channels, state__in=[CommandState.QUEUED, CommandState.SENT]
        ).order_by("pk")
        for pk in list(stuck.values_list("pk", flat=True)):
            ended += command_finish(command_id=pk, state=CommandState.FAILED, error_description=why) is not None
    ids = [pk for pk, _ in open_connections]
    if ids:
        connections.connections_close(closes=[(pk, close_code) for pk in ids])
        Connection.objects.filter(pk__in=ids, reason="").update(reason=why[:200])
    return Leftovers(connections=len(ids), commands=ended)


def processes_reap(*, exclude_id: int | None = None, limit: int = 10) -> list[int]:
    """End the expired leases (at most ``limit`` per call) and what their processes left; returns their ids.

    Race-safe: each lease is taken ``FOR UPDATE SKIP LOCKED`` in its own transaction, and ended in it: a second
    reaper skips it (or, once committed, no longer finds it expired and live), and a late renewal by the lease's
    own process finds it ended (``LeaseLost``)."""
    reaped: list[int] = []
    for _ in range(limit):
        with transaction.atomic():
            expired = ServerProcess.objects.select_for_update(skip_locked=True).filter(
                ended_at__isnull=True, lease_until__lt=Now()
            )
            if exclude_id is not None:
                expired = expired.exclude(pk=exclude_id)
            process = expired.order_by("lease_until").first()
            if process is None:
                break
            why = (
                f"server process {process.hostname}:{process.pid} stopped without closing (lease #{process.pk} expired)"
            )
            left = _leftovers_end(process=process, why=why, close_code=CLOSE_PROCESS_DIED)
            ServerProcess.objects.filter(pk=process.pk).update(
                ended_at=Now(),
                end=ServerProcess.End.EXPIRED,
                cleaned_up={"connections": left.connections, "commands": left.commands, "by": current_process_id()},
            )
        logger.warning(
            "server process %s:%s (lease #%s) expired: %d connections recorded closed, %d commands failed",
            process.hostname,
            process.pid,
            process.pk,
            left.connections,
            left.commands,
        )
        reaped.append(process.pk)
    return reaped


def process_release(*, process_id: int) -> Leftovers:
    """The end of a graceful shutdown: end the lease, and whatever of it is still open (connections whose
    consumers did not record their close within the shutdown timeout, their commands)."""
    global _current
    with transaction.atomic():
        process = ServerProcess.objects.select_for_update().filter(pk=process_id, ended_at__isnull=True).first()
        if process is None:  # reaped meanwhile, or never stored
            return Leftovers(0, 0)
        why = f"server process {process.hostname}:{process.pid} stopped (shutdown) before the station answered"
        left = _leftovers_end(process=process, why=why, close_code=CLOSE_GOING_AWAY)
        ServerProcess.objects.filter(pk=process_id).update(
            ended_at=Now(),
            end=ServerProcess.End.STOPPED,
            cleaned_up={"connections": left.connections, "commands": left.commands, "by": process_id},
        )
    if _current == process_id:
        _current = None
    return left


def processes_prune(*, older_than_days: int) -> int:
    """Forget ended leases older than that (their connections keep the id, pointing at nothing)."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = ServerProcess.objects.filter(ended_at__lt=cutoff).delete()
    return deleted


@dataclass(frozen=True, slots=True)
class ProcessRow:
    pk: int
    hostname: str
    pid: int
    started_at: datetime
    renewed_at: datetime
    alive: bool
    connections: int


def processes_alive() -> list[ProcessRow]:
    """The daphne processes whose lease runs, with their open connections (the overview)."""
    from django.db.models import Count, Q

    now = timezone.now()
    rows = (
        ServerProcess.objects.filter(ended_at__isnull=True)
        .annotate(open=Count("connections", filter=Q(connections__disconnected_at__isnull=True)))
        .order_by("started_at", "pk")
    )
    return [ProcessRow(p.pk, p.hostname, p.pid, p.started_at, p.renewed_at, p.lease_until >= now, p.open) for p in rows]
