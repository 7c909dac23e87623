"""The fault tests' simulated load: stations charging, behaving as real ones do across outages.

Each ``LoadStation`` boots, starts one transaction and reports a TransactionEvent ``Updated`` with meter values every
``interval_s`` (energy register = 10 Wh x seqNo), a Heartbeat every ``heartbeat_s``, and answers the CSMS's CALLs.
Like a real station (OCPP 2.0.1 E04, E12, and ``OCPPCommCtrlr.MessageAttemptsTransactionEvent``):

- TransactionEvents are queued and sent in order, one CALL at a time; one is taken off the queue only when it is
  answered (CALLRESULT) or after ``MAX_TE_ATTEMPTS`` CALLERRORs (then it is dropped: recorded in ``Ledger.dropped``).
- Offline (no connection, or the connection lost with a CALL unanswered), events keep being queued (``offline`` set on
  those made while offline) and are sent, with their own seqNo, after the reconnect and BootNotification.
- A lost connection is retried with jittered backoff.

``Ledger.answered`` records every (transactionId, seqNo) whose TransactionEvent got a CALLRESULT: each must be in
the CSMS's database exactly once. The stations run on an event loop in a thread of their own (``LoadRunner``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from bench.responses import build_response

MAX_TE_ATTEMPTS = 3  # OCPPCommCtrlr.MessageAttemptsTransactionEvent
TE_RETRY_INTERVAL_S = 1.0  # OCPPCommCtrlr.MessageAttemptIntervalTransactionEvent (scaled down)
WH_PER_SEQ = 10


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Ledger:
    """What the stations were told, across all of them (appended from the load's thread)."""

    answered: list[tuple[str, int]] = field(default_factory=list)  # (transactionId, seqNo) per CALLRESULT
    dropped: list[tuple[str, int]] = field(default_factory=list)  # given up after MAX_TE_ATTEMPTS CALLERRORs
    call_errors: Counter[str] = field(default_factory=Counter)  # "<action>:<code>"
    connects: Counter[str] = field(default_factory=Counter)  # identity -> accepted connections (booted)
    csms_calls: Counter[str] = field(default_factory=Counter)  # CSMS->CS actions answered


class _Lost(Exception):
    """The connection is gone or useless (closed, or a CALL unanswered within the timeout)."""


class LoadStation:
    def __init__(
        self, base_url: str, identity: str, ledger: Ledger, *, interval_s: float = 1.5, heartbeat_s: float = 10.0
    ) -> None:
        self.url = f"{base_url}/ocpp/{identity}"
        self.identity = identity
        self.ledger = ledger
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.transaction_id = f"TX-{identity}"
        self.queue: deque[dict[str, Any]] = deque()
        self.wake = asyncio.Event()
        self.connected = False
        self.last_answer = 0.0  # monotonic time of the last CALLRESULT to one of our CALLs
        self.generating = True
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._attempts = 0
        self._ws: Any = None

    # --- events ---------------------------------------------------------------------------------------------------
    def _event(self, event_type: str, **extra: Any) -> dict[str, Any]:
        seq_no = next(self._seq)
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": now_iso(),
            "triggerReason": "Authorized" if event_type == "Started" else "MeterValuePeriodic",
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": self.transaction_id, "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": now_iso(),
                    "sampledValue": [
                        {"value": seq_no * WH_PER_SEQ, "measurand": "Energy.Active.Import.Register",
                         "unitOfMeasure": {"unit": "Wh"}},
                        {"value": 11000, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                    ],
                }
            ],
        }  # fmt: skip
        if not self.connected:
            payload["offline"] = True
        return payload | extra

    async def _generate(self) -> None:
        self.queue.append(self._event("Started", idToken={"idToken": f"TOK-{self.identity}", "type": "ISO14443"}))
        self.wake.set()
        while self.generating:
            await asyncio.sleep(self.interval_s * random.uniform(0.8, 1.2))
            if self.generating:
                self.queue.append(self._event("Updated"))
                self.wake.set()

    # --- the wire -------------------------------------------------------------------------------------------------
    async def _answer(self, frame: list[Any]) -> None:
        self.ledger.csms_calls[frame[2]] += 1
        await self._ws.send(json.dumps([3, frame[1], build_response(frame[2], frame[3], {})]))

    async def _call(self, action: str, payload: dict[str, Any], timeout_s: float = 30) -> list[Any]:
        unique_id = f"{self.identity}-{next(self._ids)}"
        deadline = time.monotonic() + timeout_s
        try:
            await self._ws.send(json.dumps([2, unique_id, action, payload]))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Lost(f"{action} unanswered within {timeout_s} s")
                frame = json.loads(await asyncio.wait_for(self._ws.recv(), remaining))
                if frame[0] == 2:
                    await self._answer(frame)
                elif frame[1] == unique_id:
                    if frame[0] == 3:
                        self.last_answer = time.monotonic()
                    else:
                        self.ledger.call_errors[f"{action}:{frame[2]}"] += 1
                    return list(frame)
        except (ConnectionClosed, TimeoutError, OSError) as exc:
            raise _Lost(str(exc)) from exc

    async def _idle(self, seconds: float) -> None:
        """Wait for work, answering the CSMS's CALLs meanwhile."""
        try:
            frame = json.loads(await asyncio.wait_for(self._ws.recv(), seconds))
        except TimeoutError:
            return
        except (ConnectionClosed, OSError) as exc:
            raise _Lost(str(exc)) from exc
        if frame[0] == 2:
            await self._answer(frame)

    async def _session(self) -> None:
        boot = await self._call(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"vendorName": "faults", "model": "Load"}},
        )
        if boot[0] != 3 or boot[2].get("status") != "Accepted":
            raise _Lost(f"boot not accepted: {boot}")
        self.connected = True
        self.ledger.connects[self.identity] += 1
        next_heartbeat = time.monotonic() + self.heartbeat_s
        while self.queue or self.generating:
            if self.queue:
                payload = self.queue[0]
                reply = await self._call("TransactionEvent", payload)
                key = (self.transaction_id, payload["seqNo"])
                if reply[0] == 3:
                    self.ledger.answered.append(key)
                    self.queue.popleft()
                    self._attempts = 0
                else:
                    self._attempts += 1
                    if self._attempts >= MAX_TE_ATTEMPTS:
                        self.ledger.dropped.append(key)
                        self.queue.popleft()
                        self._attempts = 0
                    else:
                        await asyncio.sleep(TE_RETRY_INTERVAL_S)
            elif time.monotonic() >= next_heartbeat:
                await self._call("Heartbeat", {})
                next_heartbeat = time.monotonic() + self.heartbeat_s
            else:
                self.wake.clear()
                await self._idle(min(0.5, max(0.05, next_heartbeat - time.monotonic())))

    async def run(self) -> None:
        generator = asyncio.create_task(self._generate())
        backoff = 0.5
        try:
            while self.queue or self.generating:
                try:
                    async with websockets.connect(
                        self.url,
                        subprotocols=[Subprotocol("ocpp2.0.1")],
                        open_timeout=30,
                        close_timeout=2,
                        ping_interval=None,
                    ) as ws:
                        self._ws = ws
                        await self._session()
                        backoff = 0.5
                except (_Lost, OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
                    pass
                finally:
                    self.connected = False
                    self._ws = None
                if self.queue or self.generating:
                    await asyncio.sleep(random.uniform(backoff / 2, backoff))
                    backoff = min(5.0, backoff * 2)
        finally:
            generator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await generator


class LoadRunner:
    """``count`` stations on an event loop in a thread: ``start()``, then ``finish()`` (stop making events, send
    what is queued, disconnect)."""

    def __init__(self, base_url: str, count: int, *, prefix: str = "LOAD", **kwargs: Any) -> None:
        self.ledger = Ledger()
        self.stations = [LoadStation(base_url, f"{prefix}-{i:03d}", self.ledger, **kwargs) for i in range(count)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._done = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def all_stations() -> None:
            await asyncio.gather(*(st.run() for st in self.stations), return_exceptions=True)

        try:
            self._loop.run_until_complete(all_stations())
        finally:
            self._done.set()

    def start(self) -> None:
        self._thread.start()

    def finish(self, timeout_s: float = 90) -> bool:
        """Stop generating; True when every station emptied its queue and disconnected within ``timeout_s``."""
        for st in self.stations:
            st.generating = False
        return self._done.wait(timeout_s)

    def all_answered_since(self, since: float, identities: Iterable[str] | None = None) -> list[str]:
        """Stations not connected with an answer to one of their CALLs after ``since`` (monotonic): [] when all are."""
        wanted = set(identities) if identities is not None else None
        return [
            st.identity
            for st in self.stations
            if (wanted is None or st.identity in wanted) and not (st.connected and st.last_answer > since)
        ]

    def answered(self) -> list[tuple[str, int]]:
        return list(self.ledger.answered)
