"""Group commit (stations/writer.py, calls.calls_commit_group) on the ASGI app in process, on PostgreSQL: what the
speed must not cost. No answer before its commit, one bad event never fails the others, a station's order kept, a
retry during a group stores nothing twice, a failed COMMIT answers nothing that was not stored, overload answered
(never dropped).

Each test proves its group happened: rows inserted by one PostgreSQL transaction share their ``xmin``, and the
writer's batch-size histogram counts the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection
from prometheus_client import REGISTRY

from stations import writer
from stations.models import ChargingStation
from tests.conftest import AsgiServer, wait_until_async
from tests.ocpp_client import AsgiStation, run
from tests.transactions.factories import meter_value, sampled, tx_event
from transactions.models import ChargingTransaction, MeterSample, TransactionEventRecord

EVSE = {"id": 1, "connectorId": 1}
BAD_TIMESTAMP = "9999-12-31T23:59:59-23:59"  # schema-valid, but Python cannot represent it: the handler raises


def started(seq_no: int = 0, transaction_id: str = "TX-1", wh: float = 1000, timestamp: str = "") -> dict[str, Any]:
    stamp = timestamp or f"2026-01-01T10:{seq_no // 60 % 60:02d}:{seq_no % 60:02d}Z"
    return tx_event(
        "Started" if seq_no == 0 else "Updated",
        seq_no,
        stamp,
        transaction_id,
        trigger="Authorized" if seq_no == 0 else "MeterValuePeriodic",
        evse=EVSE if seq_no == 0 else None,
        info={"chargingState": "Charging"},
        meter=[meter_value(stamp, sampled(wh))],
    )


def frame(message_id: str, payload: dict[str, Any], action: str = "TransactionEvent") -> str:
    return json.dumps([2, message_id, action, payload])


def batch_sizes() -> dict[str, float]:
    """Cumulative bucket counts of the writer's batch-size histogram (process-wide: compare before/after)."""
    out: dict[str, float] = {}
    for family in REGISTRY.collect():
        if family.name == "csms_group_commit_batch_size":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    out[sample.labels["le"]] = sample.value
    return out


def groups_of_at_least(before: dict[str, float], after: dict[str, float], size: int) -> float:
    """How many groups of ``size`` or more CALLs were committed between the two readings."""
    below = str(float(size // 2)) if size > 1 else None  # buckets are powers of two
    total = after["+Inf"] - before.get("+Inf", 0)
    return total - ((after[below] - before.get(below, 0)) if below else 0)


def retries(reason: str) -> float:
    return REGISTRY.get_sample_value("csms_group_commit_retries_total", {"reason": reason}) or 0.0


def refused() -> float:
    return REGISTRY.get_sample_value("csms_group_commit_refused_total") or 0.0


def event_xmins() -> dict[tuple[str, int], str]:
    """(identity, seqNo) -> the id of the PostgreSQL transaction that inserted the event."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.identity, e.seq_no, e.xmin::text FROM transactions_transactioneventrecord e "
            "JOIN transactions_chargingtransaction t ON t.id = e.transaction_id "
            "JOIN stations_chargingstation s ON s.id = t.station_id"
        )
        return {(identity, seq_no): xmin for identity, seq_no, xmin in cursor.fetchall()}


@contextlib.contextmanager
def table_locked(table: str, mode: str = "ACCESS EXCLUSIVE") -> Iterator[psycopg.Connection[Any]]:
    """Another connection holding a ``mode`` lock on ``table`` until ``.rollback()`` (or the end)."""
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(f"LOCK TABLE {table} IN {mode} MODE")
        try:
            yield other
        finally:
            other.rollback()


@pytest.fixture
def grouped(asgi_server: AsgiServer, settings: Any, station_factory: Any) -> AsgiServer:
    """One writer, no window: a group is what queued while the one before it was committing."""
    settings.CSMS_GROUP_COMMIT_MAX_BATCH = 64
    settings.CSMS_GROUP_COMMIT_WRITERS = 1
    settings.CSMS_GROUP_COMMIT_WINDOW_MS = 0
    settings.CSMS_GROUP_COMMIT_MAX_QUEUE = 5000
    for i in range(6):
        station_factory(f"GC-{i}")
    return asgi_server


STATUS = {"timestamp": "2026-01-01T09:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
STATUS_TABLE = "stations_statusnotificationrecord"


async def writer_held(blocker: AsgiStation) -> None:
    """Occupy the one writer with the blocker's StatusNotification, held by a lock on its table (taken by the
    test): what the stations send next queues behind it and becomes the next group, whatever the machine's speed."""
    await blocker.send_raw(frame("block", STATUS, "StatusNotification"))
    w = writer.writer()
    assert await wait_until_async(lambda: w.in_flight and not w.queue, timeout_s=10)


async def queued(count: int) -> None:
    w = writer.writer()
    assert await wait_until_async(lambda: len(w.queue) == count, timeout_s=10)


@contextlib.asynccontextmanager
async def booted(server: AsgiServer, *identities: str) -> AsyncIterator[list[AsgiStation]]:
    async with contextlib.AsyncExitStack() as stack:
        stations = [await stack.enter_async_context(server.station(identity)) for identity in identities]
        for st in stations:
            assert (await st.boot())[0] == 3
        yield stations


def test_no_answer_leaves_before_its_group_is_committed(grouped: AsgiServer) -> None:
    before = batch_sizes()

    async def scenario(status_lock: psycopg.Connection[Any], sample_lock: psycopg.Connection[Any]) -> list[Any]:
        async with booted(grouped, "GC-0", "GC-1", "GC-2", "GC-3") as (blocker, *stations):
            await writer_held(blocker)
            for i, st in enumerate(stations):
                await st.send_raw(frame(f"te-{i}", started(transaction_id=f"TX-{i}")))
            await queued(3)
            await asyncio.to_thread(status_lock.rollback)
            assert await blocker.recv() == [3, "block", {}]
            w = writer.writer()
            assert await wait_until_async(lambda: w.in_flight and not w.queue, timeout_s=10)  # the three applying
            for st in stations:  # held back by the lock on a table the group writes: nothing may be answered
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(st.recv(), 1 / len(stations))
            await asyncio.to_thread(sample_lock.rollback)  # the lock goes: the group commits
            return [await st.recv() for st in stations]

    with table_locked(STATUS_TABLE) as status_lock, table_locked("transactions_metersample") as sample_lock:
        replies = run(scenario(status_lock, sample_lock))
    assert replies == [[3, f"te-{i}", {}] for i in range(3)]
    xmins = event_xmins()
    assert set(xmins) == {("GC-1", 0), ("GC-2", 0), ("GC-3", 0)}
    assert len(set(xmins.values())) == 1  # one transaction stored the three stations' events
    assert MeterSample.objects.count() == 3
    assert groups_of_at_least(before, batch_sizes(), 3) == 1


def test_one_failing_event_in_a_group_fails_only_its_own_answer(grouped: AsgiServer) -> None:
    before, item_failures = batch_sizes(), retries("item_failed")

    async def scenario(lock: psycopg.Connection[Any]) -> list[list[Any]]:
        async with booted(grouped, "GC-0", "GC-1", "GC-2", "GC-3", "GC-4", "GC-5") as (blocker, *stations):
            await writer_held(blocker)
            for i, st in enumerate(stations):
                payload = started(transaction_id=f"TX-{i}", timestamp=BAD_TIMESTAMP if i == 2 else "")
                await st.send_raw(frame(f"te-{i}", payload))
            await queued(5)
            await asyncio.to_thread(lock.rollback)
            assert await blocker.recv() == [3, "block", {}]
            return [await st.recv() for st in stations]

    with table_locked(STATUS_TABLE) as lock:
        replies = run(scenario(lock))
    assert replies[2] == [4, "te-2", "InternalError", "Internal error: OverflowError", {}]
    assert [r for i, r in enumerate(replies) if i != 2] == [[3, f"te-{i}", {}] for i in (0, 1, 3, 4)]
    xmins = event_xmins()
    assert set(xmins) == {("GC-1", 0), ("GC-2", 0), ("GC-4", 0), ("GC-5", 0)}
    assert not ChargingTransaction.objects.filter(station__identity="GC-3").exists()
    # The two before the failing one were committed together again, the two after as the next group.
    assert xmins[("GC-1", 0)] == xmins[("GC-2", 0)] != xmins[("GC-4", 0)] == xmins[("GC-5", 0)]
    assert groups_of_at_least(before, batch_sizes(), 5) == 1
    assert retries("item_failed") - item_failures == 1


@pytest.fixture
def fails_at_commit() -> Iterator[None]:
    """A deferred constraint trigger: an event with seqNo 666 makes the COMMIT itself fail, inside PostgreSQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION csms_test_fail_commit() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'injected commit failure'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER csms_test_fail_commit AFTER INSERT ON transactions_transactioneventrecord "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.seq_no = 666) "
            "EXECUTE FUNCTION csms_test_fail_commit()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS csms_test_fail_commit ON transactions_transactioneventrecord")


def test_failed_commit_answers_only_what_each_own_transaction_stored(
    grouped: AsgiServer, fails_at_commit: None
) -> None:
    before, commit_failures = batch_sizes(), retries("commit_failed")

    async def scenario(lock: psycopg.Connection[Any]) -> list[list[Any]]:
        async with booted(grouped, "GC-0", "GC-1", "GC-2", "GC-3") as (blocker, *stations):
            await writer_held(blocker)
            for i, st in enumerate(stations):
                await st.send_raw(frame(f"te-{i}", started(seq_no=666 if i == 1 else 0, transaction_id=f"TX-{i}")))
            await queued(3)
            await asyncio.to_thread(lock.rollback)
            assert await blocker.recv() == [3, "block", {}]
            return [await st.recv() for st in stations]

    with table_locked(STATUS_TABLE) as lock:
        replies = run(scenario(lock))
    assert replies == [
        [3, "te-0", {}],
        [4, "te-1", "InternalError", "Database error; nothing of this message was stored", {}],
        [3, "te-2", {}],
    ]
    xmins = event_xmins()
    assert set(xmins) == {("GC-1", 0), ("GC-3", 0)}  # every answered event stored, the refused one not
    assert xmins[("GC-1", 0)] != xmins[("GC-3", 0)]  # each retried in its own transaction
    assert not ChargingTransaction.objects.filter(station__identity="GC-2").exists()
    assert MeterSample.objects.count() == 2
    assert groups_of_at_least(before, batch_sizes(), 3) == 1
    assert retries("commit_failed") - commit_failures == 1


def test_a_stations_events_are_applied_in_the_order_it_sent_them(grouped: AsgiServer) -> None:
    before = batch_sizes()

    async def scenario(lock: psycopg.Connection[Any]) -> list[list[Any]]:
        async with booted(grouped, "GC-0", "GC-1", "GC-2") as (blocker, one, other):
            await writer_held(blocker)
            # GC-1 does not wait for its answers (OCPP-J says it should): the consumer still takes them in order.
            for seq_no in range(5):
                await one.send_raw(frame(f"one-{seq_no}", started(seq_no=seq_no, wh=1000 + 100 * seq_no)))
            await other.send_raw(frame("other-0", started(transaction_id="TX-9")))
            await queued(2)  # GC-1's first and GC-2's: one group
            await asyncio.to_thread(lock.rollback)
            assert await blocker.recv() == [3, "block", {}]
            replies = [await one.recv() for _ in range(5)]
            return [*replies, await other.recv()]

    with table_locked(STATUS_TABLE) as lock:
        replies = run(scenario(lock))
    assert [r[1] for r in replies] == ["one-0", "one-1", "one-2", "one-3", "one-4", "other-0"]
    assert all(r[0] == 3 for r in replies)
    txn = ChargingTransaction.objects.get(station__identity="GC-1")
    # Inserted in seqNo order (primary keys), never out of order: no gap was ever recorded, energy from 1000 to 1400.
    assert list(
        TransactionEventRecord.objects.filter(transaction=txn).order_by("pk").values_list("seq_no", flat=True)
    ) == [0, 1, 2, 3, 4]
    assert (txn.event_count, txn.last_seq_no, txn.seq_no_gaps) == (5, 4, [])
    assert txn.energy_wh == Decimal(400)
    xmins = event_xmins()
    assert xmins[("GC-1", 0)] == xmins[("GC-2", 0)]  # grouped with another station's event
    assert groups_of_at_least(before, batch_sizes(), 2) >= 1


def test_a_retry_sent_while_its_event_is_in_a_group_stores_nothing_twice(grouped: AsgiServer, settings: Any) -> None:
    settings.CSMS_GROUP_COMMIT_WRITERS = 2  # the retry could be taken by a second writer: it must wait its turn
    settings.CSMS_GROUP_COMMIT_WINDOW_MS = 0
    update = started(seq_no=1, wh=1500)

    async def first_session() -> None:
        async with booted(grouped, "GC-1") as (st,):
            assert await st.call("TransactionEvent", started(), message_id="start") == [3, "start", {}]

    async def scenario(lock: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
        w = writer.writer()
        async with grouped.station("GC-1") as first:
            assert (await first.boot())[0] == 3
            await first.send_raw(frame("upd-a", update))
            assert await wait_until_async(lambda: w.in_flight and not w.queue, timeout_s=10)
            # The station gives up waiting, reconnects and sends the same event again (a new message id).
            async with grouped.station("GC-1") as again:
                assert (await again.boot())[0] == 3
                await again.send_raw(frame("upd-b", update))
                await queued(1)  # not in a second group beside the first: it waits for the first's commit
                await asyncio.to_thread(lock.rollback)
                answer_a = await first.recv()
                answer_b = await again.recv()
        return answer_a, answer_b

    run(first_session())
    # The group waits at its first statement, the lock of the transactions it names (EXCLUSIVE: plain reads pass;
    # the group's SELECT ... FOR UPDATE does not), before it has locked anything the reconnecting station needs.
    with table_locked("transactions_chargingtransaction", "EXCLUSIVE") as lock:
        answer_a, answer_b = run(scenario(lock))
    assert answer_a == [3, "upd-a", {}]
    assert answer_b == [3, "upd-b", {}]  # the same answer: the retry is recognised as such
    txn = ChargingTransaction.objects.get(station__identity="GC-1")
    assert TransactionEventRecord.objects.filter(transaction=txn).count() == 2
    assert MeterSample.objects.filter(transaction=txn).count() == 2
    assert (txn.event_count, txn.energy_wh) == (2, Decimal(500))


def test_full_queue_refuses_with_internal_error_while_boots_and_heartbeats_are_answered(
    grouped: AsgiServer, settings: Any
) -> None:
    settings.CSMS_GROUP_COMMIT_WINDOW_MS = 0
    settings.CSMS_GROUP_COMMIT_MAX_QUEUE = 1
    refused_before = refused()

    async def scenario(lock: psycopg.Connection[Any]) -> dict[str, Any]:
        w = writer.writer()
        async with booted(grouped, "GC-1", "GC-2", "GC-3", "GC-4") as (a, b, c, d):
            await a.send_raw(frame("a", started(transaction_id="TX-A")))
            assert await wait_until_async(lambda: w.in_flight and not w.queue, timeout_s=10)
            await b.send_raw(frame("b", started(transaction_id="TX-B")))
            assert await wait_until_async(lambda: len(w.queue) == 1, timeout_s=10)
            out: dict[str, Any] = {"c": await c.call("TransactionEvent", started(transaction_id="TX-C"), "c")}
            out["heartbeat"] = await d.call("Heartbeat", {}, message_id="hb")
            async with grouped.station("GC-5") as e:  # a station booting while the writer is saturated
                out["boot"] = await e.boot()
            await asyncio.to_thread(lock.rollback)
            out["a"], out["b"] = await a.recv(), await b.recv()
        return out

    with table_locked("transactions_metersample") as lock:
        out = run(scenario(lock))
    assert out["c"] == [
        4,
        "c",
        "InternalError",
        "CSMS overloaded: nothing of this message was stored; send it again later",
        {},
    ]
    assert out["heartbeat"][:2] == [3, "hb"]
    assert out["boot"][0] == 3 and out["boot"][2]["status"] == "Accepted"
    assert (out["a"], out["b"]) == ([3, "a", {}], [3, "b", {}])
    assert sorted(ChargingTransaction.objects.values_list("transaction_id", flat=True)) == ["TX-A", "TX-B"]
    assert refused() - refused_before == 1
    assert ChargingStation.objects.get(identity="GC-5").boots.count() == 1
