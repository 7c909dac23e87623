"""Simulated OCPP 2.0.1 charging stations (asyncio + websockets).

``SimStation`` is one station: boot, heartbeats, status changes, charging sessions with TransactionEvent and
MeterValues, answers to every CSMS->CS request (schema-valid, ``Accepted`` unless configured), reconnects with
backoff and replays the events it queued while offline with ``offline=true``. ``Simulator`` runs many of them.
Both are importable by tests::

    async with SimStation(ws_url, "CS-1") as st:
        await st.boot()
        await st.run_session(evse_id=1, updates=3)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .responses import build_response

logger = logging.getLogger("bench.simulator")

SUBPROTOCOL = "ocpp2.0.1"
# Messages that a real station keeps in its queue while offline and replays afterwards (OCPP 2.0.1 E04/E12).
QUEUED_ACTIONS = frozenset({"TransactionEvent", "MeterValues", "StatusNotification"})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CallErrorReply(Exception):
    """The CSMS answered a CALL with CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any = None) -> None:
        super().__init__(f"{action}: {code} {description}")
        self.action, self.code, self.description, self.details = action, code, description, details


class NotConnected(Exception):
    """A CALL was made while the station had no connection (and the message is not one that gets queued)."""


@dataclass
class Stats:
    """Round-trip latencies (seconds) and outcomes per action, for the harness."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # "<action>:<code>" -> count
    answered_calls: int = 0  # CSMS->CS requests answered

    def record(self, action: str, seconds: float) -> None:
        self.latencies.setdefault(action, []).append(seconds)

    def error(self, action: str, code: str) -> None:
        key = f"{action}:{code}"
        self.errors[key] = self.errors.get(key, 0) + 1


VOLTAGE_V = 230.0
EV_MIN_CURRENT_A = 6.0  # IEC 61851: below 6 A an EV cannot charge, it pauses
LINE_PHASES = ("L1", "L2", "L3")


@dataclass
class Session:
    evse_id: int
    transaction_id: str
    id_token: str
    seq_no: int = 0
    energy_wh: float = 0.0
    power_w: float = 11000.0
    started: float = field(default_factory=time.monotonic)
    phases: int = 3
    ev_max_a: float | None = None  # what the EV takes at most per phase (None: power_w spread over the phases)
    draw_a: float = 0.0  # what it draws now per phase: min(EV max, the active charging limit)

    @property
    def wanted_a(self) -> float:
        return self.ev_max_a if self.ev_max_a is not None else self.power_w / (VOLTAGE_V * self.phases)


def _profile_active(profile: dict[str, Any], now: datetime) -> bool:
    valid_from, valid_to = profile.get("validFrom"), profile.get("validTo")
    if valid_from and datetime.fromisoformat(valid_from.replace("Z", "+00:00")) > now:
        return False
    return not (valid_to and datetime.fromisoformat(valid_to.replace("Z", "+00:00")) <= now)


def _schedule_limit_a(profile: dict[str, Any], phases: int, started: datetime, now: datetime) -> float | None:
    """The limit (A per phase) of a profile's first schedule now, or None when its schedule does not cover now."""
    schedule = profile["chargingSchedule"][0]
    if profile["chargingProfileKind"] == "Relative":
        start = started
    else:
        start_text = schedule.get("startSchedule")
        start = datetime.fromisoformat(start_text.replace("Z", "+00:00")) if start_text else started
    offset = (now - start).total_seconds()
    duration = schedule.get("duration")
    if offset < 0 or (duration is not None and offset >= duration):
        return None
    limit = None
    for period in schedule["chargingSchedulePeriod"]:
        if period["startPeriod"] <= offset:
            limit = float(period["limit"])
    if limit is None:
        return None
    if schedule["chargingRateUnit"] == "W":
        limit = limit / (VOLTAGE_V * phases)
    return limit


CallHook = Callable[["SimStation", str, dict[str, Any]], Any]


class SimStation:
    """One simulated station on one WebSocket, with M EVSEs of one connector each."""

    def __init__(
        self,
        base_url: str,
        identity: str,
        *,
        evses: int = 1,
        password: str | None = None,
        statuses: dict[str, str] | None = None,
        call_timeout_s: float = 30,
        open_timeout_s: float = 30,
        reconnect: bool = True,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        boot_payload: dict[str, Any] | None = None,
        stats: Stats | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.identity = identity
        self.evses = evses
        self.password = password
        self.statuses = dict(statuses or {})  # action -> status of our answer (default Accepted)
        self.call_timeout_s = call_timeout_s
        self.open_timeout_s = open_timeout_s
        self.reconnect = reconnect
        self.backoff_s = backoff_s
        self.boot_payload = boot_payload or {
            "reason": "PowerUp",
            "chargingStation": {"vendorName": "CSMS-bench", "model": "SimStation", "serialNumber": identity[:25]},
        }
        self.stats = stats or Stats()
        self.ws: ClientConnection | None = None
        self.heartbeat_interval_s = 300.0
        self.registration_status = ""
        self.sessions: dict[int, Session] = {}
        self.backlog: list[tuple[str, dict[str, Any]]] = []  # queued while offline
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.on_call: CallHook | None = None  # extra behaviour after answering a CSMS CALL
        # Installed charging profiles: id -> (evseId, ChargingProfileType); applied to what the sessions draw.
        self.profiles: dict[int, tuple[int, dict[str, Any]]] = {}
        self.on_draw: Callable[[SimStation], None] | None = None  # called whenever a session's draw changes
        self.report_current = True  # Current.Import per phase in meter values
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._lock = asyncio.Lock()  # OCPP-J: one CALL of ours in flight at a time
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- connection --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.base_url}/ocpp/{self.identity}"

    @property
    def connected(self) -> bool:
        return self.ws is not None and self._connected.is_set()

    async def connect(self) -> None:
        headers = None
        if self.password is not None:
            token = base64.b64encode(f"{self.identity}:{self.password}".encode()).decode()
            headers = {"Authorization": f"Basic {token}"}
        self.ws = await websockets.connect(
            self.url,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=self.open_timeout_s,
            ping_interval=None,  # the CSMS side decides keep-alive; pings would skew the idle-memory figure
            max_size=None,
            compression=None,  # OCPP frames are small; per-message deflate costs memory per connection
        )
        self._connected.set()
        self._reader = asyncio.create_task(self._read_loop(self.ws))

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def __aenter__(self) -> SimStation:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for text in ws:
                self._on_frame(text if isinstance(text, str) else text.decode())
        except ConnectionClosed:
            pass
        finally:
            self._connected.clear()
            lost = ConnectionError(f"{self.identity}: connection closed")
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()
            if self.reconnect and not self._closing:
                self._spawn(self._reconnect_loop())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect_loop(self) -> None:
        delay, cap = self.backoff_s
        while not self._closing:
            # Equal jitter: thousands of stations losing the CSMS at once must not come back in lockstep.
            await asyncio.sleep(random.uniform(delay / 2, delay))
            try:
                await self.connect()
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                logger.debug("%s: reconnect failed: %s", self.identity, exc)
                delay = min(cap, delay * 2)
                continue
            try:
                await self.boot()
                await self.replay_backlog()
            except (CallErrorReply, ConnectionError, TimeoutError) as exc:
                logger.debug("%s: after reconnect: %s", self.identity, exc)
            return

    def _on_frame(self, text: str) -> None:
        try:
            frame = json.loads(text)
            kind, unique_id = frame[0], frame[1]
        except (ValueError, IndexError, TypeError):
            logger.warning("%s: unreadable frame %r", self.identity, text[:200])
            return
        if kind == 2:
            self._spawn(self._answer(unique_id, frame[2], frame[3]))
            return
        entry = self._pending.pop(unique_id, None)
        if entry is None:
            return
        action, future = entry
        if future.done():
            return
        if kind == 3:
            future.set_result(frame[2])
        else:
            future.set_exception(CallErrorReply(action, frame[2], frame[3], frame[4] if len(frame) > 4 else None))

    async def _answer(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        self.received_calls.append((action, payload))
        response = build_response(action, payload, self.statuses)
        if response.get("status") == "Accepted" and action in ("SetChargingProfile", "ClearChargingProfile"):
            # A station applies the limit as it accepts it: the CSMS may count on it once it has the answer.
            self.apply_profile_request(action, payload)
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(json.dumps([3, unique_id, response]))
        self.stats.answered_calls += 1
        await self._react(action, payload, response)
        if self.on_call is not None:
            result = self.on_call(self, action, payload)
            if asyncio.iscoroutine(result):
                await result

    async def _react(self, action: str, payload: dict[str, Any], response: dict[str, Any]) -> None:
        """What a real station does after accepting some requests."""
        if response.get("status") != "Accepted":
            return
        if action == "RequestStartTransaction":
            evse_id = int(payload.get("evseId") or 1)
            if evse_id not in self.sessions:
                self._spawn(self.start_session(evse_id, payload["idToken"]["idToken"], "RemoteStart"))
        elif action == "RequestStopTransaction":
            for session in list(self.sessions.values()):
                if session.transaction_id == payload.get("transactionId"):
                    self._spawn(self.stop_session(session.evse_id, reason="Remote", trigger="RemoteStop"))
        elif action == "TriggerMessage":
            message = payload.get("requestedMessage")
            if message == "Heartbeat":
                self._spawn(self.heartbeat())
            elif message == "BootNotification":
                self._spawn(self.boot())
            elif message == "StatusNotification":
                self._spawn(self.status(int((payload.get("evse") or {}).get("id", 1)), "Available"))

    # --- charging profiles (smart charging) ------------------------------------------------------------------------
    def apply_profile_request(self, action: str, payload: dict[str, Any]) -> None:
        if action == "SetChargingProfile":
            profile = payload["chargingProfile"]
            self.profiles[int(profile["id"])] = (int(payload["evseId"]), profile)
        else:
            wanted_id = payload.get("chargingProfileId")
            criteria = payload.get("chargingProfileCriteria") or {}
            for profile_id, (evse_id, profile) in list(self.profiles.items()):
                if wanted_id is not None and profile_id != wanted_id:
                    continue
                if "evseId" in criteria and criteria["evseId"] != evse_id:
                    continue
                purpose = criteria.get("chargingProfilePurpose")
                if purpose and purpose != profile["chargingProfilePurpose"]:
                    continue
                del self.profiles[profile_id]
        self.recompute_draw()

    def limit_a(self, session: Session, now: datetime | None = None) -> float | None:
        """The session's charging limit per phase: its TxProfile (highest stack level) if one is active, else the
        TxDefaultProfile of its EVSE or of the station (EVSE 0); None without any."""
        now = now or datetime.now(UTC)
        started = datetime.now(UTC) - timedelta(seconds=time.monotonic() - session.started)
        best: dict[str, tuple[int, float]] = {}
        for evse_id, profile in self.profiles.values():
            purpose = profile["chargingProfilePurpose"]
            if purpose == "TxProfile":
                if evse_id != session.evse_id or profile.get("transactionId") != session.transaction_id:
                    continue
            elif purpose == "TxDefaultProfile":
                if evse_id not in (0, session.evse_id):
                    continue
                purpose = f"TxDefaultProfile{0 if evse_id else 1}"  # an EVSE's own default beats the station's
            else:
                continue
            if not _profile_active(profile, now):
                continue
            limit = _schedule_limit_a(profile, session.phases, started, now)
            if limit is None:
                continue
            level = int(profile["stackLevel"])
            if purpose not in best or level > best[purpose][0]:
                best[purpose] = (level, limit)
        for purpose in ("TxProfile", "TxDefaultProfile1", "TxDefaultProfile0"):
            if purpose in best:
                return best[purpose][1]
        return None

    def recompute_draw(self) -> None:
        changed = False
        for session in self.sessions.values():
            limit = self.limit_a(session)
            draw = session.wanted_a if limit is None else min(session.wanted_a, limit)
            if draw < EV_MIN_CURRENT_A:
                draw = 0.0
            if draw != session.draw_a:
                session.draw_a, changed = draw, True
        if changed and self.on_draw is not None:
            self.on_draw(self)

    def draw_per_phase(self) -> list[float]:
        """What the station draws now on each of its phases (L1, L2, L3), A."""
        total = [0.0, 0.0, 0.0]
        for session in self.sessions.values():
            for p in range(session.phases):
                total[p] += session.draw_a
        return total

    # --- CALLs to the CSMS ---------------------------------------------------------------------------------------
    async def call(self, action: str, payload: dict[str, Any], *, queue_offline: bool = True) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload (CallErrorReply for a CALLERROR).

        Offline, TransactionEvent/MeterValues/StatusNotification go to the backlog (returns {}), others raise.
        """
        if not self.connected:
            if queue_offline and action in QUEUED_ACTIONS:
                self.backlog.append((action, payload))
                return {}
            raise NotConnected(f"{self.identity}: {action} while offline")
        async with self._lock:
            assert self.ws is not None
            unique_id = uuid.uuid4().hex[:16] + str(next(self._ids))
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = (action, future)
            started = time.perf_counter()
            try:
                await self.ws.send(json.dumps([2, unique_id, action, payload]))
                result = await asyncio.wait_for(future, self.call_timeout_s)
            except CallErrorReply as exc:
                self.stats.error(action, exc.code)
                raise
            except TimeoutError:
                self._pending.pop(unique_id, None)
                self.stats.error(action, "Timeout")
                raise
            except (ConnectionClosed, ConnectionError):
                self.stats.error(action, "ConnectionLost")
                if queue_offline and action in QUEUED_ACTIONS:
                    self.backlog.append((action, payload))
                    return {}
                raise
            self.stats.record(action, time.perf_counter() - started)
            return result

    async def replay_backlog(self) -> int:
        """Send the events queued while offline, oldest first, flagged ``offline``; returns how many were sent."""
        sent = 0
        while self.backlog and self.connected:
            action, payload = self.backlog.pop(0)
            if action == "TransactionEvent":
                payload = payload | {"offline": True}
            try:
                await self.call(action, payload, queue_offline=False)
            except CallErrorReply:
                pass  # the CSMS has seen it; a station does not resend a message that got a CALLERROR
            sent += 1
        return sent

    async def boot(self, reason: str | None = None) -> dict[str, Any]:
        payload = self.boot_payload if reason is None else self.boot_payload | {"reason": reason}
        result = await self.call("BootNotification", payload, queue_offline=False)
        self.registration_status = result.get("status", "")
        self.heartbeat_interval_s = float(result.get("interval") or self.heartbeat_interval_s)
        return result

    async def heartbeat(self) -> dict[str, Any]:
        return await self.call("Heartbeat", {}, queue_offline=False)

    async def status(self, evse_id: int, status: str, connector_id: int = 1) -> dict[str, Any]:
        payload = {"timestamp": now_iso(), "connectorStatus": status, "evseId": evse_id, "connectorId": connector_id}
        return await self.call("StatusNotification", payload)

    async def all_status(self, status: str = "Available") -> None:
        for evse_id in range(1, self.evses + 1):
            await self.status(evse_id, status)

    # --- charging sessions -----------------------------------------------------------------------------------------
    def _power_w(self, session: Session) -> float:
        if session.ev_max_a is None and self.limit_a(session) is None:
            return session.power_w  # unlimited: the configured power
        return round(session.draw_a * VOLTAGE_V * session.phases, 1)

    def _meter_value(self, session: Session, context: str) -> list[dict[str, Any]]:
        sampled: list[dict[str, Any]] = [
            {"value": round(session.energy_wh, 1), "measurand": "Energy.Active.Import.Register",
             "context": context, "unitOfMeasure": {"unit": "Wh"}},
            {"value": self._power_w(session), "measurand": "Power.Active.Import", "context": context,
             "unitOfMeasure": {"unit": "W"}},
        ]  # fmt: skip
        if self.report_current:
            sampled += [
                {"value": round(session.draw_a, 1), "measurand": "Current.Import", "phase": LINE_PHASES[p],
                 "context": context, "unitOfMeasure": {"unit": "A"}}
                for p in range(session.phases)
            ]  # fmt: skip
        return [{"timestamp": now_iso(), "sampledValue": sampled}]

    def _transaction_event(
        self, session: Session, event_type: str, trigger: str, charging_state: str, context: str, **extra: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": now_iso(),
            "triggerReason": trigger,
            "seqNo": session.seq_no,
            "transactionInfo": {"transactionId": session.transaction_id, "chargingState": charging_state},
            "evse": {"id": session.evse_id, "connectorId": 1},
            "meterValue": self._meter_value(session, context),
        }
        session.seq_no += 1
        payload["transactionInfo"] |= extra.pop("transaction_info", {})
        return payload | extra

    async def start_session(
        self,
        evse_id: int = 1,
        id_token: str = "TOKEN-1",
        trigger: str = "Authorized",
        *,
        ev_max_a: float | None = None,
        phases: int = 3,
    ) -> Session:
        session = Session(
            evse_id=evse_id, transaction_id=uuid.uuid4().hex[:36], id_token=id_token, ev_max_a=ev_max_a, phases=phases
        )
        self.sessions[evse_id] = session
        self.recompute_draw()
        await self.status(evse_id, "Occupied")
        await self.call(
            "TransactionEvent",
            self._transaction_event(
                session, "Started", trigger, "Charging", "Transaction.Begin",
                idToken={"idToken": id_token, "type": "ISO14443"},
            ),
        )  # fmt: skip
        return session

    async def update_session(self, evse_id: int = 1, seconds: float = 60.0) -> None:
        """Advance the meter by ``seconds`` of charging and report it (TransactionEvent Updated + MeterValues)."""
        session = self.sessions[evse_id]
        self.recompute_draw()  # a profile may have expired
        session.energy_wh += self._power_w(session) * seconds / 3600
        await self.call(
            "TransactionEvent",
            self._transaction_event(session, "Updated", "MeterValuePeriodic", "Charging", "Sample.Periodic"),
        )
        await self.call("MeterValues", {"evseId": evse_id, "meterValue": self._meter_value(session, "Sample.Periodic")})

    async def stop_session(self, evse_id: int = 1, reason: str = "Local", trigger: str = "StopAuthorized") -> None:
        session = self.sessions.pop(evse_id)
        # The station drops the transaction's TxProfiles with it (K01.FR.05 context: they apply to it only).
        for profile_id, (_, profile) in list(self.profiles.items()):
            if profile.get("transactionId") == session.transaction_id:
                del self.profiles[profile_id]
        session.draw_a = 0.0
        if self.on_draw is not None:
            self.on_draw(self)
        await self.call(
            "TransactionEvent",
            self._transaction_event(
                session, "Ended", trigger, "Idle", "Transaction.End", transaction_info={"stoppedReason": reason}
            ),
        )
        await self.status(evse_id, "Available")

    async def run_session(self, evse_id: int = 1, updates: int = 3, interval_s: float = 0.0) -> None:
        """A full session: Started, ``updates`` x (Updated + MeterValues) every ``interval_s``, Ended."""
        await self.start_session(evse_id, f"TOKEN-{self.identity[:10]}-{evse_id}")
        for _ in range(updates):
            if interval_s:
                await asyncio.sleep(interval_s)
            await self.update_session(evse_id, seconds=interval_s or 60.0)
        await self.stop_session(evse_id)

    # --- a station's life ------------------------------------------------------------------------------------------
    async def run(self, *, duration_s: float, heartbeat_s: float | None = None, session_every_s: float = 30.0,
                  session_updates: int = 3, meter_interval_s: float = 5.0) -> None:  # fmt: skip
        """Live demo behaviour for ``duration_s``: boot, status, heartbeats, sessions on every EVSE."""
        deadline = time.monotonic() + duration_s
        if not self.connected:
            await self.connect()
        await self.boot()
        await self.all_status("Available")
        beat = heartbeat_s or self.heartbeat_interval_s
        self._spawn(self._heartbeats(beat, deadline))
        sessions = [self._sessions(evse, deadline, session_every_s, session_updates, meter_interval_s)
                    for evse in range(1, self.evses + 1)]  # fmt: skip
        await asyncio.gather(*sessions, return_exceptions=True)

    async def _heartbeats(self, interval_s: float, deadline: float) -> None:
        while time.monotonic() + interval_s < deadline:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(CallErrorReply, NotConnected, ConnectionError, TimeoutError):
                await self.heartbeat()

    async def _sessions(self, evse_id: int, deadline: float, every_s: float, updates: int, meter_s: float) -> None:
        await asyncio.sleep(random.uniform(0, every_s))
        while time.monotonic() + updates * meter_s < deadline:
            try:
                await self.run_session(evse_id, updates, meter_s)
            except (CallErrorReply, NotConnected, ConnectionError, TimeoutError) as exc:
                logger.info("%s evse %s: session: %s", self.identity, evse_id, exc)
                self.sessions.pop(evse_id, None)
            await asyncio.sleep(random.uniform(every_s / 2, every_s))


class Simulator:
    """N stations against one CSMS; ``await sim.run(duration_s=60)`` for a live demo."""

    def __init__(
        self, base_url: str, count: int, *, prefix: str = "SIM", evses: int = 1, **station_kwargs: Any
    ) -> None:
        self.stats = Stats()
        self.stations = [
            SimStation(base_url, f"{prefix}-{i:05d}", evses=evses, stats=self.stats, **station_kwargs)
            for i in range(1, count + 1)
        ]

    async def connect_all(self, concurrency: int = 100) -> list[BaseException | None]:
        gate = asyncio.Semaphore(concurrency)

        async def one(st: SimStation) -> None:
            async with gate:
                await st.connect()
                await st.boot()

        return await asyncio.gather(*(one(st) for st in self.stations), return_exceptions=True)

    async def run(self, duration_s: float, **kwargs: Any) -> None:
        async def one(st: SimStation) -> None:
            try:
                await st.run(duration_s=duration_s, **kwargs)
            except Exception as exc:  # one broken station must not stop the others
                logger.warning("%s: %s", st.identity, exc)

        await asyncio.gather(*(one(st) for st in self.stations))

    async def close(self) -> None:
        await asyncio.gather(*(st.close() for st in self.stations), return_exceptions=True)
