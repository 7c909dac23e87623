"""Load-generating client processes for the harness.

The 2-core box cannot drive thousands of sockets from one Python process, so the harness starts several
``LoadWorker`` processes, each holding a slice of the stations, and steps them through phases over a pipe:
``connect`` (boot storm), ``load`` (closed loop, optional think time), ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import random
import resource
import time
import uuid
import weakref
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from websockets.exceptions import ConnectionClosed

from .simulator import CallErrorReply, NotConnected, Session, SimStation, Stats

# Actions whose round trips are counted as "events" in each load kind.
COUNTED = {
    "heartbeat": ("Heartbeat",),
    "transaction": ("TransactionEvent", "MeterValues"),  # the TE+MV mix of the earlier runs
    "te": ("TransactionEvent",),  # TransactionEvent only, each with its meter values: the goal figures of issue 18
    "realistic": ("TransactionEvent", "Heartbeat"),
}


def raise_nofile_limit() -> int:
    """Thousands of sockets need more than the usual 1024 descriptors; take the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _connect(stations: list[SimStation], opts: dict[str, Any]) -> dict[str, Any]:
    gate = asyncio.Semaphore(opts.get("concurrency") or len(stations) or 1)
    errors: dict[str, int] = {}
    done_at: list[float] = []

    async def one(st: SimStation) -> None:
        if st.connected and st.registration_status == "Accepted":
            return  # already up from an earlier phase
        # Like a real station: a failed handshake or boot is retried after a jittered pause (bounded).
        for attempt in range(opts.get("attempts", 3)):
            if attempt:
                await asyncio.sleep(random.uniform(0.5, 2.0) * attempt)
            async with gate:
                try:
                    if not st.connected:
                        await st.connect()
                    if opts.get("boot", True):
                        result = await st.boot()
                        if result.get("status") != "Accepted":
                            raise RuntimeError(f"boot {result.get('status')}")
                    done_at.append(time.time())
                    return
                except Exception as exc:
                    key = type(exc).__name__ if not isinstance(exc, CallErrorReply) else exc.code
                    errors[key] = errors.get(key, 0) + 1

    await asyncio.gather(*(one(st) for st in stations))
    up = sum(1 for st in stations if st.connected and st.registration_status == "Accepted")
    return {"accepted": len(done_at), "up": up, "errors": errors, "last_accepted_at": max(done_at, default=0.0)}


async def _heartbeat_loop(st: SimStation, deadline: float, think_s: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(CallErrorReply):
            await st.heartbeat()
        if think_s:
            await asyncio.sleep(think_s)


async def _transaction_loop(st: SimStation, deadline: float, think_s: float) -> None:
    """Sessions on EVSE 1: Started, then Updated + MeterValues pairs, Ended every 10 updates."""

    async def send(action: str, payload: dict[str, Any]) -> None:
        with contextlib.suppress(CallErrorReply):
            await st.call(action, payload, queue_offline=False)
        if think_s:
            await asyncio.sleep(think_s)

    while time.monotonic() < deadline:
        session = Session(evse_id=1, transaction_id=uuid.uuid4().hex, id_token="BENCH")
        token = {"idToken": {"idToken": "BENCH", "type": "ISO14443"}}
        await send("TransactionEvent", st._transaction_event(session, "Started", "Authorized", "Charging",
                                                             "Transaction.Begin", **token))  # fmt: skip
        for _ in range(10):
            if time.monotonic() >= deadline:
                break
            session.energy_wh += 100
            await send("TransactionEvent", st._transaction_event(session, "Updated", "MeterValuePeriodic",
                                                                 "Charging", "Sample.Periodic"))  # fmt: skip
            await send("MeterValues", {"evseId": 1, "meterValue": st._meter_value(session, "Sample.Periodic")})
        end = {"transaction_info": {"stoppedReason": "Local"}}
        await send("TransactionEvent", st._transaction_event(session, "Ended", "StopAuthorized", "Idle",
                                                             "Transaction.End", **end))  # fmt: skip


TE_UPDATES = 10
TE_CYCLE = TE_UPDATES + 2  # a session's events: Started, the updates, Ended


def te_messages(st: SimStation, updates: int = TE_UPDATES) -> Iterator[tuple[str, dict[str, Any]]]:
    """The bench's TransactionEvent mix, endless: Started (with a token), ``updates`` x Updated, Ended; every event
    carries its meter values (energy register + power: two samples)."""
    token = {"idToken": {"idToken": "BENCH", "type": "ISO14443"}}
    while True:
        session = Session(evse_id=1, transaction_id=uuid.uuid4().hex, id_token="BENCH")
        yield "TransactionEvent", st._transaction_event(session, "Started", "Authorized", "Charging",
                                                        "Transaction.Begin", **token)  # fmt: skip
        for _ in range(updates):
            session.energy_wh += 100
            yield "TransactionEvent", st._transaction_event(session, "Updated", "MeterValuePeriodic", "Charging",
                                                            "Sample.Periodic")  # fmt: skip
        end = {"transaction_info": {"stoppedReason": "Local"}}
        yield "TransactionEvent", st._transaction_event(session, "Ended", "StopAuthorized", "Idle",
                                                        "Transaction.End", **end)  # fmt: skip


def heartbeat_messages() -> Iterator[tuple[str, dict[str, Any]]]:
    while True:
        yield "Heartbeat", {}


# Each station's TransactionEvent stream lives across the phases of a level: a phase (or its warm-up) resumes the
# sessions the last one left open, so a closed-loop phase measures the declared mix instead of a burst of Started.
_te_streams: weakref.WeakKeyDictionary[SimStation, Iterator[tuple[str, dict[str, Any]]]] = weakref.WeakKeyDictionary()


def te_stream(st: SimStation) -> Iterator[tuple[str, dict[str, Any]]]:
    stream = _te_streams.get(st)
    if stream is None:
        stream = _te_streams[st] = te_messages(st)
    return stream


async def _te_loop(st: SimStation, deadline: float, think_s: float) -> None:
    messages = te_stream(st)
    while time.monotonic() < deadline:
        action, payload = next(messages)
        with contextlib.suppress(CallErrorReply):
            await st.call(action, payload, queue_offline=False)
        if think_s:
            await asyncio.sleep(think_s)


class Schedule:
    """Open-loop pacing: a station's n-th message is due at offset + n * interval, whatever the server's speed.
    Latency runs from the due time (a late answer delays the next send, and that wait counts: no coordinated
    omission); due messages not sent by the end of the phase + ``grace_s`` count as offered and not served."""

    def __init__(self, started: float, deadline: float, grace_s: float) -> None:
        self.started, self.deadline, self.stop_at = started, deadline, deadline + grace_s
        self.offered = 0
        self.served: dict[str, list[float]] = {}
        # (seconds from the start of the phase to the due time, latency, what was sent): where in the phase the tail
        # is, and of which messages (a TransactionEvent's eventType, else the action).
        self.timeline: list[tuple[float, float, str]] = []

    async def run(self, st: SimStation, messages: Iterator[tuple[str, dict[str, Any]]], interval_s: float) -> None:
        due = self.started + random.uniform(0, interval_s)
        while due < self.deadline:
            self.offered += 1
            now = time.monotonic()
            if now >= self.stop_at or not st.connected:
                due += interval_s
                continue  # offered, never sent: the server fell too far behind, or dropped the station
            if due > now:
                await asyncio.sleep(due - now)
            action, payload = next(messages)
            # CALLERROR, timeout, lost connection: st.call() has counted it in the station's errors.
            with contextlib.suppress(CallErrorReply, TimeoutError, ConnectionError, NotConnected, ConnectionClosed):
                await st.call(action, payload, queue_offline=False)
                latency = time.monotonic() - due
                self.served.setdefault(action, []).append(latency)
                self.timeline.append((due - self.started, latency, payload.get("eventType") or action))
            due += interval_s


async def _load(stations: list[SimStation], stats: Stats, opts: dict[str, Any]) -> dict[str, Any]:
    # All workers start at the same wall-clock instant so that the aggregate rate is honest.
    await asyncio.sleep(max(0.0, opts["start_at"] - time.time()))
    stats.latencies.clear()
    stats.errors.clear()
    started = time.monotonic()
    deadline = started + opts["duration_s"]
    think_s = float(opts.get("think_s") or 0)
    kind = opts["kind"]
    loops = {"heartbeat": _heartbeat_loop, "transaction": _transaction_loop, "te": _te_loop}
    live = [st for st in stations if st.connected]
    schedule = Schedule(started, deadline, float(opts.get("grace_s") or 10))
    intervals: dict[str, float] = opts.get("intervals") or {}  # open loop: message source -> interval_s

    async def one(st: SimStation) -> None:
        try:
            if intervals:
                sources = {"te": lambda: te_stream(st), "heartbeat": heartbeat_messages}
                await asyncio.gather(*(schedule.run(st, sources[src](), iv) for src, iv in intervals.items()))
                return
            if think_s:  # spread paced stations over the interval instead of firing in lockstep
                await asyncio.sleep(random.uniform(0, think_s))
            await loops[kind](st, deadline, think_s)
        except Exception as exc:
            stats.error("load", type(exc).__name__)

    await asyncio.gather(*(one(st) for st in live))
    elapsed = time.monotonic() - started
    counted = COUNTED[kind]
    if intervals:
        by_action = {action: schedule.served.get(action, []) for action in counted}
    else:
        by_action = {action: stats.latencies.get(action, []) for action in counted}
    latencies = [x for values in by_action.values() for x in values]
    return {
        "elapsed_s": elapsed,
        "ok": len(latencies),
        "latencies": latencies,
        "by_action": by_action,
        "offered": schedule.offered if intervals else None,
        "timeline": schedule.timeline,
        "errors": dict(stats.errors),
        "stations": len(live),
    }


async def _advance(stations: list[SimStation], opts: dict[str, Any]) -> dict[str, Any]:
    """Each station sends a random number (0 to ``cycle`` - 1) of its TransactionEvent stream's messages, at most
    ``concurrency`` stations at a time: its sessions are then at a random point of their course, so a phase that
    follows sees the mix's share of session starts spread over time rather than every station's Started at once."""
    gate = asyncio.Semaphore(opts.get("concurrency") or len(stations) or 1)
    sent = [0]

    async def one(st: SimStation, count: int) -> None:
        async with gate:
            messages = te_stream(st)
            for _ in range(count):
                action, payload = next(messages)
                with contextlib.suppress(CallErrorReply, TimeoutError, ConnectionError, NotConnected, ConnectionClosed):
                    await st.call(action, payload, queue_offline=False)
                    sent[0] += 1

    live = [st for st in stations if st.connected]
    exact = opts.get("exact")
    await asyncio.gather(*(one(st, exact if exact is not None else random.randrange(opts["cycle"])) for st in live))
    return {"sent": sent[0], "stations": len(live)}


async def _serve(pipe: Connection, base_url: str, identities: list[str], evses: int) -> None:
    stats = Stats()
    stations = [
        SimStation(base_url, identity, evses=evses, stats=stats, reconnect=False, open_timeout_s=30, call_timeout_s=30)
        for identity in identities
    ]
    loop = asyncio.get_running_loop()
    while True:
        command, opts = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            pipe.send(await _connect(stations, opts))
        elif command == "load":
            pipe.send(await _load(stations, stats, opts))
        elif command == "advance":
            pipe.send(await _advance(stations, opts))
        elif command == "close":
            await asyncio.gather(*(st.close() for st in stations), return_exceptions=True)
            pipe.send({"closed": len(stations)})
            return


def _worker_main(pipe: Connection, base_url: str, identities: list[str], evses: int) -> None:
    raise_nofile_limit()
    asyncio.run(_serve(pipe, base_url, identities, evses))


class LoadWorkers:
    """``count`` stations split over ``processes`` client processes; methods return the merged results."""

    def __init__(self, base_url: str, identities: list[str], processes: int = 2, evses: int = 1) -> None:
        ctx = mp.get_context("spawn")  # no forked copies of the harness's state
        self.pipes: list[Connection] = []
        self.procs: list[Any] = []
        processes = max(1, min(processes, len(identities)))
        for i in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main, args=(child, base_url, identities[i::processes], evses), daemon=True
            )
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def _all(self, command: str, opts: dict[str, Any], timeout_s: float) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send((command, opts))
        results = []
        deadline = time.monotonic() + timeout_s
        for pipe in self.pipes:
            if not pipe.poll(max(0.1, deadline - time.monotonic())):
                raise TimeoutError(f"load worker did not finish {command} within {timeout_s:g} s")
            results.append(pipe.recv())
        return results

    def connect(
        self, concurrency: int | None = None, boot: bool = True, attempts: int = 3, timeout_s: float = 180
    ) -> dict[str, Any]:
        """Connect and boot the stations not up yet; ``concurrency`` None = all at once (a boot storm)."""
        started = time.time()
        per_proc = max(1, (concurrency or 0) // len(self.pipes)) if concurrency else None
        opts = {"concurrency": per_proc, "boot": boot, "attempts": attempts}
        results = self._all("connect", opts, timeout_s)
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        last = max(r["last_accepted_at"] for r in results)
        return {
            "accepted": sum(r["accepted"] for r in results),
            "up": sum(r["up"] for r in results),
            "errors": errors,
            # Until the last one that made it; None when none did.
            "seconds": round(max(0.0, last - started), 3) if last else None,
        }

    def load(
        self, kind: str, duration_s: float, think_s: float = 0.0, intervals: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """Closed loop (``think_s`` 0), closed loop with a pause, or open loop: ``intervals`` maps a message source
        (``te``, ``heartbeat``) to the seconds between a station's messages of it."""
        opts = {"kind": kind, "duration_s": duration_s, "think_s": think_s, "intervals": intervals or {},
                "start_at": time.time() + 0.5}  # fmt: skip
        results = self._all("load", opts, duration_s + 150)
        latencies = sorted(x for r in results for x in r["latencies"])
        by_action: dict[str, list[float]] = {}
        for r in results:
            for action, values in r["by_action"].items():
                by_action.setdefault(action, []).extend(values)
        errors: dict[str, int] = {}
        for r in results:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        elapsed = max(r["elapsed_s"] for r in results)
        stations = sum(r["stations"] for r in results)
        offered = [r["offered"] for r in results if r["offered"] is not None]
        return {
            "ok": len(latencies),
            "elapsed_s": elapsed,
            "duration_s": duration_s,
            "latencies": latencies,
            "by_action": {action: sorted(values) for action, values in by_action.items()},
            "offered": sum(offered) if offered else None,
            "timeline": [x for r in results for x in r.get("timeline", [])],
            "errors": errors,
            "stations": stations,
        }

    def advance(
        self, cycle: int = TE_CYCLE, exact: int | None = None, concurrency: int = 200, timeout_s: float = 300
    ) -> dict[str, Any]:
        """Put every station's sessions at a random point of the TransactionEvent mix (see ``_advance``), or
        ``exact`` messages into it (1: its session started)."""
        per_proc = max(1, concurrency // len(self.pipes))
        results = self._all("advance", {"cycle": cycle, "exact": exact, "concurrency": per_proc}, timeout_s)
        return {"sent": sum(r["sent"] for r in results), "stations": sum(r["stations"] for r in results)}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._all("close", {}, 60)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
