"""Sites and load management: membership, the recompute (allocation -> TxProfiles, lowering first), the answer
hook that records what stations accepted, the session observer, and the selectors of the site page and API.

The allocation itself is the pure :func:`smartcharging.allocation.allocate`; here its inputs are read from the
database and its outcome is sent as short-lived TxProfiles through the command pipeline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from csms import jobs
from csms.timeutil import format_ocpp
from stations.commands import CommandValidationError, command_send
from stations.models import ChargingStation, Command, CommandState, Evse
from transactions.models import ChargingTransaction
from transactions.observers import SessionChange

from . import allocation
from .models import (
    AllocationEntry,
    AllocationRound,
    AllocationRoundState,
    AllocationStep,
    EvseAllocation,
    EvseLimit,
    Site,
    SiteMember,
    SitePriority,
)

logger = logging.getLogger(__name__)

# chargingProfile.id ranges used by the CSMS's own site profiles (one id per session, one per station's fallback).
TX_PROFILE_ID_BASE = 900_000_000
FALLBACK_PROFILE_ID_BASE = 800_000_000
LINE_PHASES = ("L1", "L2", "L3")
TENTH = Decimal("0.1")


class SiteError(ValueError):
    """A site change that cannot be made (e.g. a station already in another site)."""


def _dec(value: float) -> Decimal:
    return Decimal(str(value)).quantize(TENTH, rounding=ROUND_FLOOR)


# --- Site parameters ------------------------------------------------------------------------------------------


def site_capacity_per_phase(site: Site) -> tuple[float, ...]:
    """The capacity of each grid phase in A (``capacity_w`` is spread over the phases at the site's voltage)."""
    if site.capacity_a is not None:
        per_phase = float(site.capacity_a)
    else:
        per_phase = float(site.capacity_w or 0) / (float(site.voltage_v) * site.phases)
    return tuple([per_phase] * site.phases)


def site_min_a(site: Site) -> float:
    return float(site.min_current_a) if site.min_current_a is not None else settings.CSMS_SITE_MIN_CURRENT_A


def site_fallback_a(site: Site) -> float:
    return float(site.fallback_limit_a) if site.fallback_limit_a is not None else settings.CSMS_SITE_FALLBACK_LIMIT_A


def grid_phases(*, site_phases: int, rotation: str, phases_used: int) -> tuple[int, ...]:
    """The site's grid phases (0-based) a session uses: its station's first ``phases_used`` phases, each mapped
    through the station's phase rotation (``"SRT"``: the station's L1 is on the grid's L2)."""
    if site_phases == 1:
        return (0,)
    letters = rotation or "RST"
    return tuple(sorted({"RST".index(letters[i]) for i in range(max(1, min(3, phases_used)))}))


def _measured_by_grid(measured: list[float] | None, rotation: str, site_phases: int) -> list[float]:
    """Station-phase readings (L1, L2, L3) per grid phase."""
    out = [0.0] * site_phases
    if not measured:
        return out
    for i, value in enumerate(measured[:3]):
        grid = 0 if site_phases == 1 else "RST".index((rotation or "RST")[i])
        out[grid] += float(value or 0)
    return out


# --- Membership and configuration -----------------------------------------------------------------------------


def site_stations_check(*, site: Site | None, identities: Iterable[str]) -> dict[str, ChargingStation]:
    """The stations of ``identities``; SiteError for an unknown one or one already in another site."""
    wanted = list(dict.fromkeys(identities))
    stations = {s.identity: s for s in ChargingStation.objects.filter(identity__in=wanted)}
    unknown = [i for i in wanted if i not in stations]
    if unknown:
        raise SiteError(f"unknown station(s): {', '.join(unknown)}")
    others = SiteMember.objects.filter(station__identity__in=wanted)
    if site is not None and site.pk is not None:
        others = others.exclude(site=site)
    elsewhere = list(others.values_list("station__identity", "site__name"))
    if elsewhere:
        raise SiteError("; ".join(f"{identity} is already in site {name!r}" for identity, name in elsewhere))
    return stations


@transaction.atomic
def site_set_stations(*, site: Site, identities: Iterable[str]) -> list[SiteMember]:
    """Make exactly these stations the site's members; a station in another site is refused."""
    wanted = list(dict.fromkeys(identities))
    stations = site_stations_check(site=site, identities=wanted)
    SiteMember.objects.filter(site=site).exclude(station__identity__in=wanted).delete()
    have = set(SiteMember.objects.filter(site=site).values_list("station__identity", flat=True))
    SiteMember.objects.bulk_create([SiteMember(site=site, station=stations[i]) for i in wanted if i not in have])
    memberships_changed()
    site_recompute_request(site_id=site.pk, reason="members changed")
    return list(site.members.select_related("station"))


def site_changed(*, site: Site, reason: str) -> None:
    """After a change of capacity, strategy or limits (API, admin): recompute."""
    site_recompute_request(site_id=site.pk, reason=reason)


# --- Recompute requests (debounced) ---------------------------------------------------------------------------


def site_recompute_request(*, site_id: int, reason: str) -> None:
    """Ask for a recompute: bump the site's generation and enqueue the job after commit, a short countdown later.
    Requests within the countdown coalesce: only the job for the newest generation runs."""
    Site.objects.filter(pk=site_id).update(requested_generation=F("requested_generation") + 1)
    site = Site.objects.filter(pk=site_id).values("requested_generation", "pending_reasons").first()
    if site is None:
        return
    reasons = site["pending_reasons"] or []
    if reason not in reasons and len(reasons) < 20:
        Site.objects.filter(pk=site_id).update(pending_reasons=[*reasons, reason])
    from .tasks import site_recompute_task

    generation = site["requested_generation"]
    delay_s = settings.CSMS_SITE_RECOMPUTE_DEBOUNCE_S
    # csms.jobs.later: never a countdown past the broker's visibility timeout (the sweep catches up otherwise).
    transaction.on_commit(partial(jobs.later, site_recompute_task, args=[site_id, generation], delay_s=delay_s))


# --- The recompute ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Session:
    txn_pk: int
    transaction_id: str
    station_id: int
    evse_id: int
    phases_used: int
    grid: tuple[int, ...]


def _worst_current(alloc: EvseAllocation | None, member: SiteMember, max_a: float) -> float:
    """What the EVSE may draw now at most: the accepted TxProfile, or one in flight if higher; a session without
    an accepted TxProfile runs under the fallback the station accepted (else, unknown: its own maximum)."""
    if alloc is not None and alloc.limit_a is not None:
        base = float(alloc.limit_a)
    elif member.fallback_limit_a is not None:
        base = float(member.fallback_limit_a)
    else:
        base = max_a
    if alloc is not None and alloc.pending_a is not None:
        base = max(base, float(alloc.pending_a))
    return base


def tx_profile_payload(
    *, alloc: EvseAllocation, transaction_id: str, limit_a: Decimal, phases_used: int, now: datetime
) -> dict[str, Any]:
    """A short-lived Absolute TxProfile on the session's transaction (SetChargingProfileRequest)."""
    ttl = settings.CSMS_SITE_PROFILE_TTL_S
    profile_id = TX_PROFILE_ID_BASE + alloc.pk
    period: dict[str, Any] = {"startPeriod": 0, "limit": float(limit_a)}
    if phases_used in (1, 2, 3):
        period["numberPhases"] = phases_used
    return {
        "evseId": alloc.evse_id,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": settings.CSMS_SITE_TX_STACK_LEVEL,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": transaction_id,
            "validFrom": format_ocpp(now),
            "validTo": format_ocpp(now + timedelta(seconds=ttl)),
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "startSchedule": format_ocpp(now),
                    "duration": ttl,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [period],
                }
            ],
        },
    }


def fallback_profile_payload(*, member: SiteMember, limit_a: Decimal) -> dict[str, Any]:
    """The low TxDefaultProfile on EVSE 0 (all EVSEs): what a session runs on before, or without, its TxProfile."""
    profile_id = FALLBACK_PROFILE_ID_BASE + member.pk
    return {
        "evseId": 0,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": settings.CSMS_SITE_FALLBACK_STACK_LEVEL,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [
                {
                    "id": profile_id,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(limit_a)}],
                }
            ],
        },
    }


def _send(station: ChargingStation, payload: dict[str, Any]) -> Command | None:
    try:
        return command_send(station=station, action="SetChargingProfile", payload=payload)
    except CommandValidationError:
        logger.exception("site profile for %s refused by validation", station.identity)
        return None


def site_recompute(*, site_id: int, generation: int | None = None) -> AllocationRound | None:
    """Recompute a site's allocation and send what changed, lowering first (see :func:`site_raise` for the second
    phase). Idempotent: a run for an old generation, or one with nothing changed, sends nothing."""
    with transaction.atomic():
        site = Site.objects.select_for_update().filter(pk=site_id).first()  # the per-site lock
        if site is None or (generation is not None and generation != site.requested_generation):
            return None
        reasons = site.pending_reasons or ["recompute"]
        site.pending_reasons = []
        site.computed_generation = site.requested_generation
        site.save(update_fields=["pending_reasons", "computed_generation"])
        return _recompute_locked(site, "; ".join(reasons))


def _recompute_locked(site: Site, reason: str) -> AllocationRound:
    now = timezone.now()
    members = {m.station_id: m for m in SiteMember.objects.filter(site=site).select_related("station")}
    evse_limits = {
        (limit.member.station_id, limit.evse_id): float(limit.max_current_a)
        for limit in EvseLimit.objects.filter(member__site=site).select_related("member")
    }
    priorities = dict(SitePriority.objects.filter(site=site).values_list("group_id_token_id", "priority"))
    txns = list(
        ChargingTransaction.objects.filter(station_id__in=list(members), is_active=True, evse_id__isnull=False)
        .order_by("started_at", "pk")
        .values(
            "pk", "transaction_id", "station_id", "evse_id", "started_at", "number_of_phases_used",
            "cable_max_current_a", "token_id", "token__group_id_token_id",
        )
    )  # fmt: skip
    allocations = {a.transaction_id: a for a in EvseAllocation.objects.filter(site=site)}
    active_pks = {t["pk"] for t in txns}
    gone = [a.pk for t_pk, a in allocations.items() if t_pk not in active_pks]
    if gone:
        EvseAllocation.objects.filter(pk__in=gone).delete()
    busy = {(t["station_id"], t["evse_id"]) for t in txns}
    fallback = site_fallback_a(site)
    limits = allocation.SiteLimits(
        capacity_a=site_capacity_per_phase(site),
        min_a=site_min_a(site),
        strategy=site.strategy,
        station_max_a={sid: float(m.max_current_a) for sid, m in members.items() if m.max_current_a is not None},
        underdraw_threshold_a=settings.CSMS_SITE_UNDERDRAW_THRESHOLD_A,
        underdraw_headroom_a=settings.CSMS_SITE_UNDERDRAW_HEADROOM_A,
    )
    demands: list[allocation.Demand] = []
    sessions: dict[Hashable, _Session] = {}
    worst: dict[Hashable, float] = {}
    for t in txns:
        member = members[t["station_id"]]
        alloc = allocations.get(t["pk"])
        measured = alloc.measured_a if alloc is not None else None
        used = t["number_of_phases_used"] or _phases_from_measured(measured) or site.phases
        grid = grid_phases(site_phases=site.phases, rotation=member.phase_rotation, phases_used=used)
        max_a = min(
            evse_limits.get((t["station_id"], t["evse_id"] or 0), float("inf")),
            float(t["cable_max_current_a"]) if t["cable_max_current_a"] else float("inf"),
        )
        key = t["pk"]
        worst[key] = _worst_current(alloc, member, max_a if max_a != float("inf") else 10_000.0)
        fixed: float | None = None
        if not member.station.is_online:
            # Not steerable: it keeps what it has until its TxProfile expires.
            # OCPP SPEC-SILENT: an offline station's session whose limit the CSMS never learnt (no accepted TxProfile
            # or fallback, no EVSE limit; typically a session left open by a station that went away) is not
            # reserved: counting it as unlimited would pause the whole site for a session that may be long over.
            known = (alloc is not None and alloc.limit_a is not None) or member.fallback_limit_a is not None
            fixed = worst[key] if known or max_a != float("inf") else 0.0
        elif alloc is not None and alloc.rejected:
            fixed = worst[key]
        group = t["token__group_id_token_id"] or t["token_id"]
        demands.append(
            allocation.Demand(
                key=key,
                phases=grid,
                max_a=max_a,
                station=t["station_id"],
                priority=priorities.get(group, 0) if group else 0,
                order=t["started_at"].timestamp(),
                measured_a=max(float(v or 0) for v in measured) if measured else None,
                previous_a=float(alloc.target_a) if alloc is not None else None,
                fixed_a=fixed,
            )
        )
        sessions[key] = _Session(t["pk"], t["transaction_id"], t["station_id"], t["evse_id"] or 0, used, grid)
    if fallback > 0:  # an idle EVSE starts its next session at the fallback: kept free for it
        for station_id, evse_id in Evse.objects.filter(station_id__in=list(members)).values_list(
            "station_id", "evse_id"
        ):
            if (station_id, evse_id) not in busy:
                rotation = members[station_id].phase_rotation
                demands.append(
                    allocation.Demand(
                        key=("idle", station_id, evse_id),
                        phases=grid_phases(site_phases=site.phases, rotation=rotation, phases_used=site.phases),
                        station=station_id,
                        fixed_a=fallback,
                    )
                )
    started = time.process_time()
    result = allocation.allocate(limits, demands)
    cpu_ms = (time.process_time() - started) * 1000
    measured_total = [0.0] * site.phases
    for t in txns:
        alloc = allocations.get(t["pk"])
        if alloc is not None and alloc.measured_a:
            rotation = members[t["station_id"]].phase_rotation
            for p, v in enumerate(_measured_by_grid(alloc.measured_a, rotation, site.phases)):
                measured_total[p] += v
    AllocationRound.objects.filter(site=site, state=AllocationRoundState.LOWERING).update(
        state=AllocationRoundState.SUPERSEDED, finished_at=now
    )
    round_ = AllocationRound.objects.create(
        site=site,
        generation=site.computed_generation,
        reason=reason[:500],
        state=AllocationRoundState.DONE,
        capacity_a=list(limits.capacity_a),
        allocated_a=[round(v, 1) for v in allocation.totals(limits, demands, result)],
        measured_a=[round(v, 1) for v in measured_total],
        cpu_ms=round(cpu_ms, 3),
    )
    refresh_before = now - timedelta(seconds=settings.CSMS_SITE_PROFILE_TTL_S / 2)
    entries: list[AllocationEntry] = []
    lowers: list[tuple[AllocationEntry, EvseAllocation, _Session]] = []
    raises: list[tuple[AllocationEntry, EvseAllocation, _Session]] = []
    new_allocs: list[EvseAllocation] = []
    for demand_key, session in sessions.items():
        outcome = result[demand_key]
        target = _dec(outcome.limit_a)
        alloc = allocations.get(session.txn_pk)
        is_new = alloc is None
        if alloc is None:
            alloc = EvseAllocation(
                site=site, station_id=session.station_id, evse_id=session.evse_id, transaction_id=session.txn_pk,
                target_a=target,
            )  # fmt: skip
            new_allocs.append(alloc)
        previous = _dec(worst[demand_key])
        unknown = is_new and members[session.station_id].fallback_limit_a is None  # it may draw anything
        if outcome.reason.startswith("fixed"):
            step = AllocationStep.SAME
        elif target < previous:
            step = AllocationStep.LOWER
        elif target > previous:
            step = AllocationStep.RAISE
        elif (alloc.pk is None or alloc.limit_a != target) and alloc.pending_a != target:
            step = AllocationStep.LOWER  # same value, not yet held: safe to send now
        elif alloc.sent_at is not None and alloc.sent_at < refresh_before:
            step = AllocationStep.LOWER  # about to expire: sent again, same value
        else:
            step = AllocationStep.SAME
        alloc.target_a = target
        alloc.reason = outcome.reason[:200]
        alloc.underdraw_capped = outcome.underdraw_capped
        entry = AllocationEntry(
            round=round_, station_id=session.station_id, evse_id=session.evse_id, transaction_id=session.txn_pk,
            limit_a=target, previous_a=None if unknown else previous, step=step, reason=outcome.reason[:200],
        )  # fmt: skip
        entries.append(entry)
        if step == AllocationStep.LOWER:
            lowers.append((entry, alloc, session))
        elif step == AllocationStep.RAISE:
            raises.append((entry, alloc, session))
        allocations[session.txn_pk] = alloc
    EvseAllocation.objects.bulk_create(new_allocs)
    offline_lower = False
    for entry, alloc, session in lowers:
        command = _send_allocation(alloc, session, entry.limit_a, members[session.station_id].station, now)
        entry.command = command
        if command is None or command.state == CommandState.OFFLINE:
            offline_lower = True
    # Raises wait for every lower to be accepted; with no lower they go at once.
    pending_lowers = [e for e, _, _ in lowers if e.command is not None and e.command.state != CommandState.OFFLINE]
    if raises and not offline_lower and not pending_lowers:
        for entry, alloc, session in raises:
            entry.command = _send_allocation(alloc, session, entry.limit_a, members[session.station_id].station, now)
    elif raises and not offline_lower:
        round_.state = AllocationRoundState.LOWERING
    elif raises:
        round_.state = AllocationRoundState.FAILED  # a lower could not be sent: raising now could overload the site
    AllocationEntry.objects.bulk_create(entries)
    EvseAllocation.objects.bulk_update(
        [a for a in allocations.values() if a.pk is not None and a.transaction_id in active_pks],
        ["target_a", "reason", "underdraw_capped", "pending_a", "pending_command", "sent_at"],
    )
    if round_.state != AllocationRoundState.LOWERING:
        round_.finished_at = timezone.now()
    round_.save(update_fields=["state", "finished_at"])
    _fallbacks_install(site, members.values(), _dec(fallback))
    return round_


def _phases_from_measured(measured: list[float] | None) -> int | None:
    if not measured:
        return None
    count = sum(1 for v in measured[:3] if float(v or 0) > 0.5)
    return count or None


def _send_allocation(
    alloc: EvseAllocation, session: _Session, limit_a: Decimal, station: ChargingStation, now: datetime
) -> Command | None:
    payload = tx_profile_payload(
        alloc=alloc, transaction_id=session.transaction_id, limit_a=limit_a, phases_used=session.phases_used, now=now
    )
    command = _send(station, payload)
    if command is not None and command.state != CommandState.OFFLINE:
        alloc.pending_a, alloc.pending_command, alloc.sent_at = limit_a, command, now
    return command


def _fallbacks_install(site: Site, members: Iterable[SiteMember], limit_a: Decimal) -> None:
    """Install the site's fallback TxDefaultProfile on every online member that does not hold it yet."""
    for member in members:
        if not member.station.is_online or member.fallback_limit_a == limit_a or member.fallback_pending_a == limit_a:
            continue
        command = _send(member.station, fallback_profile_payload(member=member, limit_a=limit_a))
        if command is not None and command.state != CommandState.OFFLINE:
            SiteMember.objects.filter(pk=member.pk).update(fallback_pending_a=limit_a, fallback_command=command)


def site_raise(*, round_id: int) -> int:
    """Second phase of a round: every lower was accepted, send the raises (unless a newer round superseded it)."""
    with transaction.atomic():
        round_ = AllocationRound.objects.filter(pk=round_id).first()
        if round_ is None:
            return 0
        Site.objects.select_for_update().filter(pk=round_.site_id).first()  # the per-site lock
        round_ = AllocationRound.objects.select_for_update().get(pk=round_id)
        if round_.state != AllocationRoundState.LOWERING:
            return 0
        now = timezone.now()
        raises = list(
            round_.entries.filter(step=AllocationStep.RAISE, command__isnull=True).select_related("transaction")
        )
        allocs = {
            a.transaction_id: a
            for a in EvseAllocation.objects.filter(transaction_id__in=[e.transaction_id for e in raises])
            .select_related("station", "transaction")
        }  # fmt: skip
        sent = 0
        for entry in raises:
            alloc = allocs.get(entry.transaction_id) if entry.transaction_id is not None else None
            if alloc is None or not alloc.transaction.is_active:
                continue
            session = _Session(
                alloc.transaction_id, alloc.transaction.transaction_id, alloc.station_id, alloc.evse_id,
                alloc.transaction.number_of_phases_used or _phases_from_measured(alloc.measured_a) or 0, (),
            )  # fmt: skip
            entry.command = _send_allocation(alloc, session, entry.limit_a, alloc.station, now)
            entry.save(update_fields=["command"])
            alloc.save(update_fields=["pending_a", "pending_command", "sent_at"])
            sent += entry.command is not None
        round_.state = AllocationRoundState.DONE
        round_.finished_at = now
        round_.save(update_fields=["state", "finished_at"])
    return sent


# --- Answers ---------------------------------------------------------------------------------------------------


def profile_on_answered(command: Command) -> None:
    """SetChargingProfile answer hook: record what the station accepted of a site allocation or fallback; when
    the last lower of a round is accepted, its raises go (after commit)."""
    request = command.request or {}
    profile_id = (request.get("chargingProfile") or {}).get("id", 0)
    if profile_id < FALLBACK_PROFILE_ID_BASE:
        return  # not one of the site's profiles
    accepted = (command.response or {}).get("status") == "Accepted"
    if profile_id < TX_PROFILE_ID_BASE:
        member = SiteMember.objects.select_for_update().filter(fallback_command_id=command.pk).first()
        if member is not None:
            if accepted:
                member.fallback_limit_a = member.fallback_pending_a
            member.fallback_pending_a = None
            member.save(update_fields=["fallback_limit_a", "fallback_pending_a"])
        return
    alloc = EvseAllocation.objects.select_for_update().filter(pending_command_id=command.pk).first()
    if alloc is not None:
        if accepted:
            alloc.limit_a = alloc.pending_a
        else:
            alloc.rejected = True  # pinned at what it holds; the next recompute plans around it
        alloc.pending_a, alloc.pending_command = None, None
        alloc.save(update_fields=["limit_a", "rejected", "pending_a", "pending_command"])
    entry = AllocationEntry.objects.filter(command_id=command.pk, step=AllocationStep.LOWER).first()
    if entry is None:
        return
    round_ = AllocationRound.objects.select_for_update().get(pk=entry.round_id)  # serialises the round's answers
    if round_.state != AllocationRoundState.LOWERING:
        return
    if not accepted:
        round_.state, round_.finished_at = AllocationRoundState.FAILED, timezone.now()
        round_.save(update_fields=["state", "finished_at"])
        site_recompute_request(site_id=round_.site_id, reason="a station refused a lower limit")
        return
    lowers = Command.objects.filter(
        pk__in=round_.entries.filter(step=AllocationStep.LOWER, command__isnull=False).values("command_id")
    )
    if lowers.exclude(state=CommandState.ANSWERED).exists():
        return  # others still in flight
    from .tasks import site_raise_task

    transaction.on_commit(partial(site_raise_task.delay, round_.pk))


# --- Session observer (transactions.observers) -----------------------------------------------------------------

MEMBERSHIP_CACHE_S = 5.0


class _Memberships:
    """Every station's site (station id -> site id), read in one query and kept ``MEMBERSHIP_CACHE_S``: every
    session change with current readings asks for its station's site, and one query per process every few seconds
    costs less than one per station and session (a station's next session start comes long after a per-station
    entry would have expired). Members change rarely: a change made in another process shows here within that time,
    one made in this process at once (``memberships_changed``)."""

    def __init__(self) -> None:
        self.sites: dict[int, int] = {}
        self.expires_at = 0.0

    def clear(self) -> None:
        self.expires_at = 0.0

    def site_of(self, station_id: int) -> int | None:
        now = time.monotonic()
        if now >= self.expires_at:
            # A new dict, then one assignment: a database thread reading meanwhile sees the old map or the new.
            self.sites = dict(SiteMember.objects.order_by().values_list("station_id", "site_id"))
            self.expires_at = now + MEMBERSHIP_CACHE_S
        return self.sites.get(station_id)


_memberships = _Memberships()


def _site_of(station_id: int) -> int | None:
    return _memberships.site_of(station_id)


def memberships_changed(**_: Any) -> None:
    """post_save / post_delete of a SiteMember (and bulk changes of ``site_set_stations``): read again, now and
    once committed (a database thread may read the map again between the change and its commit)."""
    _memberships.clear()
    transaction.on_commit(_memberships.clear)


def station_in_a_site(station_id: int) -> bool:
    """The site observer's filter: only a member's sessions matter (membership cached for a few seconds)."""
    return _site_of(station_id) is not None


def session_changed(change: SessionChange) -> None:
    """A member's session started or ended: recompute; a reading shows it drawing clearly less than it was given
    (or, once reduced, all of it again): store the reading and recompute."""
    site_id = _site_of(change.station_id)
    if site_id is None or change.evse_id is None:
        return
    if change.kind in ("started", "ended"):
        if change.currents_a and change.kind == "started" and change.transaction_pk is not None:
            _store_measured(change)
        reason = f"session {change.kind} on {change.station_id}/{change.evse_id}"
        transaction.on_commit(partial(site_recompute_request, site_id=site_id, reason=reason))
        return
    if not change.currents_a:
        return
    alloc = _store_measured(change)
    if alloc is None or alloc.target_a <= 0:
        return
    drawn = max(float(v) for v in change.currents_a.values())
    limit = float(alloc.target_a)
    threshold = settings.CSMS_SITE_UNDERDRAW_THRESHOLD_A
    headroom = settings.CSMS_SITE_UNDERDRAW_HEADROOM_A
    if (not alloc.underdraw_capped and drawn < limit - threshold - headroom) or (
        alloc.underdraw_capped and drawn >= limit - threshold / 2
    ):
        reason = f"{change.station_id}/{change.evse_id} draws {drawn:.1f} A of {limit:.1f} A"
        transaction.on_commit(partial(site_recompute_request, site_id=site_id, reason=reason))


def _store_measured(change: SessionChange) -> EvseAllocation | None:
    query = Q(station_id=change.station_id, evse_id=change.evse_id)
    if change.transaction_pk is not None:
        query &= Q(transaction_id=change.transaction_pk)
    alloc = EvseAllocation.objects.filter(query).first()
    if alloc is None:
        return None
    overall = change.currents_a.get("")
    measured = [float(change.currents_a.get(p, overall if overall is not None else 0)) for p in LINE_PHASES]
    alloc.measured_a, alloc.measured_at = measured, timezone.now()
    # Written once the station's transaction has committed: a recompute or an answer may hold the row (they lock
    # allocations, then the stations they send to), and the station path, holding this station's rows, must not
    # wait for it (deadlock). After the commit it holds nothing: the write waits for the holder, and the reading is
    # stored (never skipped) before the recompute it asks for, registered after it, reads it.
    write = partial(_measured_write, alloc_pk=alloc.pk, measured=measured, measured_at=alloc.measured_at)
    transaction.on_commit(write, robust=True)
    return alloc


def _measured_write(*, alloc_pk: int, measured: list[float], measured_at: datetime) -> None:
    EvseAllocation.objects.filter(pk=alloc_pk).update(measured_a=measured, measured_at=measured_at)


# --- Sweep (beat) ----------------------------------------------------------------------------------------------


def sites_sweep() -> int:
    """Periodic: rounds stuck waiting for a lower that will never be answered (timed out, failed), allocations
    about to expire, members without the fallback: recompute those sites. Returns how many were asked."""
    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.CSMS_CALL_TIMEOUT_S + 10)
    site_ids: set[int] = set()
    for round_ in AllocationRound.objects.filter(state=AllocationRoundState.LOWERING, created_at__lt=stuck_before):
        commands = Command.objects.filter(pk__in=round_.entries.values("command_id"))
        lost = list(commands.exclude(state__in=[CommandState.ANSWERED, CommandState.QUEUED, CommandState.SENT]))
        if lost:
            EvseAllocation.objects.filter(pending_command__in=lost).update(pending_a=None, pending_command=None)
            round_.state, round_.finished_at = AllocationRoundState.FAILED, now
            round_.save(update_fields=["state", "finished_at"])
            site_ids.add(round_.site_id)
    expiring = now - timedelta(seconds=settings.CSMS_SITE_PROFILE_TTL_S / 2)
    site_ids |= set(EvseAllocation.objects.filter(sent_at__lt=expiring).values_list("site_id", flat=True))
    unfenced = SiteMember.objects.filter(
        station__is_online=True, fallback_limit_a__isnull=True, fallback_pending_a__isnull=True
    )
    site_ids |= set(unfenced.values_list("site_id", flat=True))
    for site_id in site_ids:
        site_recompute_request(site_id=site_id, reason="periodic check")
    return len(site_ids)


# --- Selectors (site page, API) --------------------------------------------------------------------------------


def site_load(site: Site) -> dict[str, Any]:
    """The site's live load: capacity, allocated and measured per grid phase, and each running session's share."""
    members = {m.station_id: m for m in SiteMember.objects.filter(site=site).select_related("station")}
    allocs = list(
        EvseAllocation.objects.filter(site=site, transaction__is_active=True)
        .select_related("station", "transaction")
        .order_by("station__identity", "evse_id")
    )
    capacity = site_capacity_per_phase(site)
    allocated = [0.0] * site.phases
    measured = [0.0] * site.phases
    evses = []
    for a in allocs:
        member = members.get(a.station_id)
        rotation = member.phase_rotation if member else "RST"
        used = a.transaction.number_of_phases_used or _phases_from_measured(a.measured_a) or site.phases
        for p in grid_phases(site_phases=site.phases, rotation=rotation, phases_used=used):
            allocated[p] += float(a.target_a)
        for p, v in enumerate(_measured_by_grid(a.measured_a, rotation, site.phases)):
            measured[p] += v
        evses.append(
            {
                "station": a.station.identity,
                "evse_id": a.evse_id,
                "transaction_id": a.transaction.transaction_id,
                "limit_a": a.target_a,
                "accepted_limit_a": a.limit_a,
                "measured_a": a.measured_a,
                "reason": a.reason,
            }
        )
    return {
        "capacity_a": [round(c, 1) for c in capacity],
        "allocated_a": [round(v, 1) for v in allocated],
        "measured_a": [round(v, 1) for v in measured],
        "evses": evses,
    }


def site_load_history(site: Site, *, limit: int = 200) -> list[AllocationRound]:
    """The latest rounds, oldest first (the chart's points)."""
    rounds = list(AllocationRound.objects.filter(site=site).order_by("-created_at", "-pk")[:limit])
    rounds.reverse()
    return rounds
