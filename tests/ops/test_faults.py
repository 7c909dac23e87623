"""Faults survived under load (issue 17): Redis restarted, PostgreSQL restarted, one of two daphne processes
SIGKILLed, the Celery worker SIGKILLed mid-job; ~100 stations charging throughout (``tests/ops/load.py``), on private
PostgreSQL and Redis (``tests/ops/services.py``), in sequence on one topology (``tests/ops/conftest.py``).

After each fault: every TransactionEvent a station got a CALLRESULT for is stored exactly once (none lost, none
double-counted, energy totals consistent with the stored events), no station dropped an event, no command sent
around the fault is left ``sent`` (or ``queued``), and every station is connected and answered again within
``RECONNECT_BOUND_S``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from stations.models import ChargingStation, Command, Connection
from tests.ocpp_client import run
from tests.ops.conftest import Faults
from tests.ops.load import WH_PER_SEQ
from tests.ops.services import free_port, wait_for
from transactions.models import ChargingTransaction, MeterSample, TransactionEventRecord
from webhooks.models import WebhookDelivery

# The first test's time includes the topology's start (migrations on a busy machine: a minute or two).
pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

RECONNECT_BOUND_S = 60  # the bound the README states: every station connected and answered again within it
SETTLE_S = 60  # commands in flight end within this (CSMS_CALL_TIMEOUT_S is 10 s in this topology)
FINAL_STATES = {"answered", "failed", "timed_out", "offline"}

EVENTS, TXNS = TransactionEventRecord._meta.db_table, ChargingTransaction._meta.db_table
SAMPLES, COMMANDS = MeterSample._meta.db_table, Command._meta.db_table
CONNECTIONS, STATIONS_T = Connection._meta.db_table, ChargingStation._meta.db_table


# --- what every scenario asserts ----------------------------------------------------------------------------------
def assert_events_stored_once(f: Faults) -> None:
    """Every answered (transactionId, seqNo) stored, none twice, samples once per event, energy = last register."""
    answered = set(f.load.answered())  # first: what is answered later is stored later too
    rows = f.sql(f"SELECT t.transaction_id, e.seq_no FROM {EVENTS} e JOIN {TXNS} t ON t.id = e.transaction_id")
    stored = Counter((str(tx), int(seq)) for tx, seq in rows)
    assert [key for key, n in stored.items() if n > 1] == []
    assert sorted(answered - set(stored)) == []
    assert f.load.ledger.dropped == []
    # Each event carries one meter value of two samples (a resent event must not add any); energy = last register.
    per_session = f.sql(
        f"SELECT t.transaction_id, t.energy_wh, (SELECT count(*) FROM {SAMPLES} s WHERE s.transaction_id = t.id), "
        f"count(e.id), max(e.seq_no) FROM {TXNS} t JOIN {EVENTS} e ON e.transaction_id = t.id "
        "WHERE t.transaction_id LIKE 'TX-LOAD-%%' GROUP BY t.id"
    )
    assert len(per_session) == len(f.load.stations)
    assert [(tx, n) for tx, _, n, events, _ in per_session if n != 2 * events] == []
    wrong = [(tx, energy, top) for tx, energy, _, _, top in per_session if energy != Decimal(top * WH_PER_SEQ)]
    assert wrong == []


def send_commands(f: Faults, count: int) -> list[int]:
    """TriggerMessage(Heartbeat) to ``count`` stations at once through the REST API; ids of the commands it recorded
    (a request the API could not serve, e.g. with the database down, recorded nothing)."""

    def one(identity: str) -> int | None:
        try:
            body = f.api(
                "POST",
                f"/api/v1/stations/{identity}/commands/",
                {"action": "TriggerMessage", "payload": {"requestedMessage": "Heartbeat"}, "wait": 0},
                timeout_s=30,
            )
        except (urllib.error.URLError, OSError):
            return None
        return int(body["id"])

    with ThreadPoolExecutor(count) as pool:
        ids = list(pool.map(one, [st.identity for st in f.load.stations[:count]]))
    return [i for i in ids if i is not None]


def command_states(f: Faults, ids: list[int]) -> dict[int, str]:
    return dict(f.sql(f"SELECT id, state FROM {COMMANDS} WHERE id = ANY(%s)", (ids,))) if ids else {}


def assert_commands_ended(f: Faults, ids: list[int]) -> dict[int, str]:
    deadline = time.monotonic() + SETTLE_S
    while not set(command_states(f, ids).values()) <= FINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.5)
    states = command_states(f, ids)
    assert sorted(ids) == sorted(states)
    assert {i: state for i, state in states.items() if state not in FINAL_STATES} == {}
    return states


def assert_all_back(f: Faults, since: float) -> None:
    wait_for(lambda: not f.load.all_answered_since(since), RECONNECT_BOUND_S, "every station connected again", 0.5)


def open_connections_not_current(f: Faults) -> list[tuple[Any, ...]]:
    """Accepted connections not recorded closed that are no longer their station's current one."""
    return f.sql(
        f"SELECT c.id, c.station_id FROM {CONNECTIONS} c JOIN {STATIONS_T} s ON s.id = c.station_id "
        "WHERE c.outcome = 'accepted' AND c.disconnected_at IS NULL "
        "AND (s.current_connection_id IS DISTINCT FROM c.id OR NOT s.is_online)"
    )


# --- the scenarios, in order ----------------------------------------------------------------------------------------
def test_redis_restart_keeps_stations_connected_and_commands_end(faults: Faults) -> None:
    f = faults
    pids = f.cluster.web_pids()
    connects = Counter(f.load.ledger.connects)
    before = send_commands(f, 5)
    f.redis.stop()
    during = send_commands(f, 5)  # the channel layer is down: they cannot reach the consumers
    time.sleep(4)
    f.redis.start()
    restarted = time.monotonic()

    assert_all_back(f, restarted)
    # The consumers' channel layer recovered in place: commands reach the stations again, no process restarted.
    after = send_commands(f, 5)
    states = assert_commands_ended(f, before + during + after)
    assert {states[i] for i in after} == {"answered"}
    assert {states[i] for i in during} <= {"failed"}
    assert f.cluster.web_pids() == pids
    assert f.load.ledger.connects == connects  # nobody had to reconnect
    assert_events_stored_once(f)


def test_postgres_restart_loses_nothing_and_resumes(faults: Faults) -> None:
    f = faults
    before = send_commands(f, 5)
    f.pg.stop()
    down = time.monotonic()
    time.sleep(6)
    f.pg.start()
    restarted = time.monotonic()

    assert_all_back(f, restarted)
    after = send_commands(f, 5)
    states = assert_commands_ended(f, before + after)
    assert {states[i] for i in after} == {"answered"}
    assert down < restarted
    assert_events_stored_once(f)


def test_daphne_sigkill_stations_move_and_nothing_is_left_behind(faults: Faults) -> None:
    f = faults
    in_flight = send_commands(f, 10)
    killed = f.cluster.kill_web(0)
    since = time.monotonic()

    assert_all_back(f, since)
    assert killed not in f.cluster.web_pids()
    wait_for(lambda: len(f.cluster.web_pids()) == 2, 30, "the supervisor's new daphne")
    assert_events_stored_once(f)
    # What the killed process left behind, cleaned up by the others (the per-process lease).
    assert_commands_ended(f, in_flight)
    wait_for(lambda: not open_connections_not_current(f), SETTLE_S, "the killed process's connections closed", 0.5)


class _Receiver(BaseHTTPRequestHandler):
    """Webhook receiver: the first POST of each delivery is held (the worker is killed meanwhile), later ones 200."""

    seen: Counter[str]
    answered: Counter[str]
    first_held: threading.Event
    release: threading.Event

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        delivery = self.headers.get("X-CSMS-Delivery", "")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen[delivery] += 1
        if type(self).seen[delivery] == 1:
            type(self).first_held.set()
            type(self).release.wait(60)
            return  # no answer: the worker that sent it is dead by now
        self.send_response(200)
        self.end_headers()
        type(self).answered[delivery] += 1

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    class Handler(_Receiver):
        seen: Counter[str] = Counter()
        answered: Counter[str] = Counter()
        first_held = threading.Event()
        release = threading.Event()

    handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    handler.release.set()
    server.shutdown()
    server.server_close()


async def _start_transaction(url: str, identity: str) -> None:
    async with websockets.connect(f"{url}/ocpp/{identity}", subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
        frames: list[list[Any]] = [
            [2, "b", "BootNotification", {"reason": "PowerUp", "chargingStation": {"vendorName": "f", "model": "W"}}],
            [2, "s", "TransactionEvent", {
                "eventType": "Started", "timestamp": "2026-12-01T00:00:00Z", "triggerReason": "Authorized",
                "seqNo": 0, "transactionInfo": {"transactionId": f"TX-{identity}"}, "evse": {"id": 1, "connectorId": 1},
                "idToken": {"idToken": "WEBHOOK", "type": "ISO14443"},
            }],
        ]  # fmt: skip
        for frame in frames:
            await ws.send(json.dumps(frame))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert reply[0] == 3, reply


def test_worker_sigkill_mid_job_redelivers_once(faults: Faults, receiver: tuple[str, type[_Receiver]]) -> None:
    f = faults
    url, handler = receiver
    f.api("POST", "/api/v1/webhooks/", {"url": url, "events": ["transaction.started"], "description": "faults"})
    time.sleep(2)  # CSMS_WEBHOOK_CACHE_S: every process sees the subscription
    run(_start_transaction(f.cluster.ws_url, "WEBHOOK-1"))
    assert handler.first_held.wait(60), "the webhook job never reached the receiver"
    killed = f.cluster.kill_worker()  # mid-job: the POST is out, no answer yet, nothing acknowledged
    handler.release.set()
    wait_for(lambda: f.cluster.worker_pid() not in (None, killed), 30, "the supervisor's new worker")

    deliveries = f"SELECT id, state, attempts FROM {WebhookDelivery._meta.db_table}"
    wait_for(lambda: [r[1] for r in f.sql(deliveries)] == ["delivered"], 120, "the delivery redelivered", 0.5)
    [(delivery_id, _, attempts)] = f.sql(deliveries)
    assert attempts == 1  # the killed attempt left nothing (its transaction rolled back)
    assert handler.answered == Counter({str(delivery_id): 1})
    assert handler.seen == Counter({str(delivery_id): 2})
    assert_events_stored_once(f)
