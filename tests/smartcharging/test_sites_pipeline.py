"""Site load management through the command pipeline: sessions starting and stopping on stations (the ASGI app in
process, real PostgreSQL and Redis, eager jobs) drive TxProfiles; lowers go first, raises only after the lowers
are accepted; every allocation is logged with its reason."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from smartcharging import sites
from smartcharging.models import AllocationRound, AllocationRoundState, AllocationStep, EvseAllocation, Site, SiteMember
from stations.models import ChargingStation
from tests.conftest import in_thread
from tests.ocpp_client import AsgiStation, run
from tests.transactions.factories import meter_value, sampled, tx_event
from transactions.models import ChargingTransaction
from transactions.observers import SessionChange

TS = "2026-03-01T10:00:00Z"
CARD = {"idToken": "CARD-1", "type": "ISO14443"}


def make_site(station_factory: Any, capacity_a: str = "32", **kwargs: Any) -> Site:
    for identity in ("CS-A", "CS-B"):
        station_factory(identity)
    site = Site.objects.create(name="Depot", capacity_a=Decimal(capacity_a), **kwargs)
    sites.site_set_stations(site=site, identities=["CS-A", "CS-B"])
    return site


async def next_call(st: AsgiStation, timeout_s: float = 30) -> list[Any]:
    if not st.incoming_calls.empty():
        return st.incoming_calls.get_nowait()
    frame = await st.recv(timeout_s)
    assert frame[0] == 2, frame
    return frame


async def answer(st: AsgiStation, frame: list[Any], status: str = "Accepted") -> None:
    await st.send_raw(json.dumps([3, frame[1], {"status": status}]))


async def tx_profile(st: AsgiStation, timeout_s: float = 30) -> list[Any]:
    """The next TxProfile the station is sent, answering (Accepted) the fallback TxDefaultProfiles on the way."""
    while True:
        frame = await next_call(st, timeout_s)
        assert frame[2] == "SetChargingProfile", frame
        if frame[3]["chargingProfile"]["chargingProfilePurpose"] == "TxDefaultProfile":
            await answer(st, frame)
            continue
        return frame


def limit(frame: list[Any]) -> float:
    return frame[3]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]


def started(transaction_id: str, evse_id: int = 1) -> dict[str, Any]:
    return tx_event(
        "Started", 0, TS, transaction_id, "Authorized", id_token=CARD, evse={"id": evse_id, "connectorId": 1}
    )


def test_a_new_session_lowers_the_others_first_and_is_raised_only_after_they_accept(asgi_server, station_factory):
    site = make_site(station_factory)

    async def scenario() -> None:
        async with asgi_server.station("CS-A") as a, asgi_server.station("CS-B") as b:
            await a.boot()
            await b.boot()
            assert (await a.call("TransactionEvent", started("TX-A")))[0] == 3
            first = await tx_profile(a)
            assert first[3]["evseId"] == 1 and limit(first) == 32.0
            profile = first[3]["chargingProfile"]
            assert profile["chargingProfilePurpose"] == "TxProfile" and profile["transactionId"] == "TX-A"
            assert profile["chargingSchedule"][0]["chargingRateUnit"] == "A"
            await answer(a, first)
            fallback = await next_call(b)  # B has no session: it only gets the fallback TxDefaultProfile (0 A)
            assert fallback[3]["chargingProfile"]["chargingProfilePurpose"] == "TxDefaultProfile"
            assert fallback[3]["evseId"] == 0 and limit(fallback) == 0.0
            await answer(b, fallback)

            assert (await b.call("TransactionEvent", started("TX-B")))[0] == 3
            lower = await tx_profile(a)
            assert limit(lower) == 16.0
            # B's raise waits for A's lower: nothing reaches B meanwhile.
            assert b.incoming_calls.empty()
            assert await b.communicator.receive_nothing(0.5)
            state = await in_thread(
                lambda: AllocationRound.objects.filter(site=site).values_list("state", flat=True)[0]
            )
            assert state == AllocationRoundState.LOWERING
            await answer(a, lower)
            raise_ = await tx_profile(b)
            assert limit(raise_) == 16.0 and raise_[3]["chargingProfile"]["transactionId"] == "TX-B"
            await answer(b, raise_)

            def settled() -> bool:
                return set(EvseAllocation.objects.values_list("limit_a", flat=True)) == {Decimal("16.0")}

            for _ in range(100):
                if await in_thread(settled):
                    break
                await asyncio.sleep(0.05)
            assert await in_thread(settled)

            # B stops: A is raised back to the whole capacity (a raise with no lower goes at once).
            ended = tx_event("Ended", 1, TS, "TX-B", "StopAuthorized", info={"stoppedReason": "Local"})
            assert (await b.call("TransactionEvent", ended))[0] == 3
            back = await tx_profile(a)
            assert limit(back) == 32.0
            await answer(a, back)

    run(scenario())
    rounds = list(AllocationRound.objects.filter(site=site).order_by("pk"))
    with_sessions = [r for r in rounds if r.entries.exists()]
    assert [r.state for r in with_sessions] == ["done", "done", "done"]
    second = with_sessions[1]
    assert "session started" in second.reason
    entries = {e.transaction.transaction_id: e for e in second.entries.select_related("transaction") if e.transaction}
    assert (entries["TX-A"].step, entries["TX-A"].limit_a) == (AllocationStep.LOWER, Decimal("16.0"))
    assert (entries["TX-B"].step, entries["TX-B"].limit_a) == (AllocationStep.RAISE, Decimal("16.0"))
    assert entries["TX-B"].reason == "equal share, L1 full"
    assert second.allocated_a == [32.0, 32.0, 32.0] and second.capacity_a == [32.0, 32.0, 32.0]
    assert EvseAllocation.objects.values_list("transaction__transaction_id", flat=True)[0] == "TX-A"
    assert set(SiteMember.objects.values_list("fallback_limit_a", flat=True)) == {Decimal("0.0")}


def test_a_refused_lower_sends_no_raise(asgi_server, station_factory):
    site = make_site(station_factory)

    async def scenario() -> None:
        async with asgi_server.station("CS-A") as a, asgi_server.station("CS-B") as b:
            await a.boot()
            await b.boot()
            await a.call("TransactionEvent", started("TX-A"))
            await answer(a, await tx_profile(a))
            await answer(b, await next_call(b))  # fallback
            await b.call("TransactionEvent", started("TX-B"))
            lower = await tx_profile(a)
            await answer(a, lower, status="Rejected")
            # A keeps 32 A: the next round pins it and B gets nothing above its fallback (paused, 0 A).
            frame = await tx_profile(b)
            assert limit(frame) == 0.0
            await answer(b, frame)

    run(scenario())
    states = list(AllocationRound.objects.filter(site=site, entries__isnull=False).distinct().values_list("state"))
    assert ("failed",) in states
    a = EvseAllocation.objects.get(transaction__transaction_id="TX-A")
    assert a.rejected is True and a.limit_a == Decimal("32.0")
    b = EvseAllocation.objects.get(transaction__transaction_id="TX-B")
    assert b.target_a == Decimal("0.0") and b.reason.startswith("paused: no room for the minimum")


def test_an_ev_drawing_less_gives_the_rest_to_the_other(asgi_server, station_factory):
    make_site(station_factory)

    async def scenario() -> None:
        async with asgi_server.station("CS-A") as a, asgi_server.station("CS-B") as b:
            await a.boot()
            await b.boot()
            await a.call("TransactionEvent", started("TX-A"))
            await answer(a, await tx_profile(a))
            await answer(b, await next_call(b))
            await b.call("TransactionEvent", started("TX-B"))
            await answer(a, await tx_profile(a))  # lowered to 16
            await answer(b, await tx_profile(b))  # raised to 16
            # B's EV takes only 6 A per phase.
            currents = [sampled(6.0, measurand="Current.Import", phase=p, unit="A") for p in ("L1", "L2", "L3")]
            reading = tx_event("Updated", 1, TS, "TX-B", meter=[meter_value(TS, *currents)])
            assert (await b.call("TransactionEvent", reading))[0] == 3
            lower = await tx_profile(b)
            assert limit(lower) == 8.0  # its draw plus the 2 A headroom
            await answer(b, lower)
            raise_ = await tx_profile(a)
            assert limit(raise_) == 24.0
            await answer(a, raise_)

    run(scenario())
    b = EvseAllocation.objects.get(transaction__transaction_id="TX-B")
    assert b.measured_a == [6.0, 6.0, 6.0] and b.underdraw_capped is True
    assert b.reason.startswith("equal share, capped: it draws 6.0 A of ")


def test_a_reading_while_the_allocation_is_locked_is_stored_once_the_lock_is_let_go(station_factory):
    """The station path never waits for an allocation row a recompute or an answer holds (deadlock), and never
    drops the reading either: it is written after the station's transaction, once the holder lets go."""
    site = make_site(station_factory)
    station = ChargingStation.objects.get(identity="CS-B")
    txn = ChargingTransaction.objects.create(
        station=station, transaction_id="TX-B", evse_id=1, started_at=timezone.now(), is_active=True
    )
    alloc = EvseAllocation.objects.create(site=site, station=station, evse_id=1, transaction=txn, target_a=16)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # what a recompute does: the allocation rows locked for its whole transaction
        try:
            with transaction.atomic():
                EvseAllocation.objects.select_for_update().get(pk=alloc.pk)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    committed = threading.Event()

    def reading() -> None:  # the station path: the observer runs inside the TransactionEvent's transaction
        try:
            with transaction.atomic():
                transaction.on_commit(committed.set)  # first of the commit's callbacks
                currents = {p: Decimal("6") for p in ("L1", "L2", "L3")}
                sites.session_changed(SessionChange("updated", station.pk, 1, txn.pk, currents_a=currents))
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    reader = threading.Thread(target=reading)
    reader.start()
    # The station's transaction commits while the row is still held (nothing on the station path waits for it).
    assert committed.wait(30)
    release.set()
    holder.join(30)
    reader.join(30)
    assert not holder.is_alive() and not reader.is_alive()
    alloc.refresh_from_db()
    assert alloc.measured_a == [6.0, 6.0, 6.0]
