"""The simulation of the issue's "done when": 10 simulated stations (real WebSocket clients, ``bench.simulator``)
with 2 EVSEs each on a 100 A site, against a live daphne server (jobs eager, as every live server of the suite).
Sessions start and stop at random; the simulated stations apply the TxProfiles they are sent and draw accordingly
(reporting Current.Import); some EVs take less than they are given. The site's summed draw never exceeds 100 A on
any phase at any moment, and once the site has settled every EV that can get its minimum charges (the site's
minimum is 12 A here, so that 8 EVs fit and a short random run has to pause some)."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import pytest

from bench.simulator import SimStation
from smartcharging import sites
from smartcharging.models import AllocationRound, AllocationRoundState, EvseAllocation, Site, SiteMember
from tests.conftest import in_thread
from tests.ocpp_client import run

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

CAPACITY_A = 100.0
STATIONS = 10
EVSES = 2
STEPS = 14
RAMP = 10  # the first 10 steps start sessions, the rest start or stop at random
MIN_A = 12.0  # the site's minimum per EV: 8 three-phase EVs fit, so a random run has to pause some


def settled(site_id: int, sessions: dict[str, tuple[SimStation, int]]) -> bool:
    """The site is at rest: no recompute asked for or running, no profile in flight, every running session has an
    allocation the station accepted."""
    site = Site.objects.get(pk=site_id)
    if site.requested_generation != site.computed_generation:
        return False
    if AllocationRound.objects.filter(site=site, state=AllocationRoundState.LOWERING).exists():
        return False
    allocs = {
        a.transaction.transaction_id: a for a in EvseAllocation.objects.filter(site=site).select_related("transaction")
    }
    if set(allocs) != set(sessions):
        return False
    return all(a.pending_command_id is None and a.limit_a == a.target_a for a in allocs.values())


def test_ten_stations_on_a_100_a_site_never_exceed_it_and_everyone_who_fits_charges(live_server_ws, station_factory):
    identities = [f"SITE-{i:02d}" for i in range(1, STATIONS + 1)]
    for identity in identities:
        station_factory(identity)
    site = Site.objects.create(name="Simulated depot", capacity_a=Decimal(CAPACITY_A), min_current_a=Decimal(MIN_A))
    sites.site_set_stations(site=site, identities=identities)
    rng = random.Random(14)
    peaks: list[float] = []
    over: list[list[float]] = []
    checks: list[tuple[int, int]] = []

    async def scenario() -> None:
        stations = [SimStation(live_server_ws.ws_url, i, evses=EVSES, reconnect=False) for i in identities]

        def on_draw(_: SimStation) -> None:  # every change of any station's draw: the site's sum at that moment
            total = [sum(st.draw_per_phase()[p] for st in stations) for p in range(3)]
            peaks.append(max(total))
            if max(total) > CAPACITY_A + 1e-6:
                over.append(total)

        for st in stations:
            st.on_draw = on_draw
            await st.connect()
            await st.boot()
        # Members that came online get the site's fallback TxDefaultProfile (the beat sweep's job in production).
        await in_thread(sites.sites_sweep)

        def fenced() -> bool:
            return SiteMember.objects.filter(site=site, fallback_limit_a=Decimal(0)).count() == STATIONS

        await wait(fenced)
        running: dict[str, tuple[SimStation, int]] = {}
        reported: set[str] = set()
        for step in range(STEPS):
            idle = [(st, e) for st in stations for e in range(1, EVSES + 1) if e not in st.sessions]
            if step >= RAMP and running and (not idle or rng.random() < 0.5):
                transaction_id = rng.choice(sorted(running))
                st, evse_id = running.pop(transaction_id)
                await st.stop_session(evse_id)
            else:
                st, evse_id = rng.choice(idle)
                session = await st.start_session(
                    evse_id, f"TOK-{st.identity}-{evse_id}", ev_max_a=rng.choice([32.0, 32.0, 16.0, 13.0])
                )
                running[session.transaction_id] = (st, evse_id)
            await wait(lambda: settled(site.pk, running))
            # EVs taking less than they were given say so in their meter values: the rest goes to the others.
            for st, evse_id in list(running.values()):
                session = st.sessions[evse_id]
                limit = st.limit_a(session)
                if limit is not None and session.wanted_a < limit - 3 and session.transaction_id not in reported:
                    reported.add(session.transaction_id)
                    await st.update_session(evse_id, seconds=10)
            await wait(lambda: settled(site.pk, running))
            charging = sum(1 for st, e in running.values() if st.sessions[e].draw_a >= MIN_A)
            checks.append((len(running), charging))
        for st in stations:
            await st.close()

    async def wait(predicate: Any, timeout_s: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if await in_thread(predicate):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the site did not settle")

    run(scenario())
    assert over == []
    assert 0 < max(peaks) <= CAPACITY_A
    fits = int(CAPACITY_A // MIN_A)  # 8 three-phase EVs at 12 A
    assert all(charging == min(active, fits) for active, charging in checks), checks
    assert max(active for active, _ in checks) > fits  # the run did have to pause some
    for round_ in AllocationRound.objects.filter(site=site):
        assert max(round_.allocated_a) <= CAPACITY_A
    assert AllocationRound.objects.filter(site=site, reason__contains="draws").exists()  # under-drawing recomputes
