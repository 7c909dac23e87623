"""Site load allocation: a pure function from a site's limits and its running sessions to a current per EVSE.

No database here (tests/smartcharging/test_allocation*.py check it exhaustively, ``bench/allocation.py`` times it).

Rules, in order:

1. Fixed loads (sessions the CSMS cannot steer right now: an offline station, a station that refused a lower
   limit, an idle EVSE's fallback reserve) are taken off the capacity first.
2. Admission: in the strategy's order (first come; ``priority``: higher priority first, then first come) each EV
   gets its minimum if every constraint it is under (the site's phases it uses, its station's limit) still has
   room for it; otherwise it is paused (0 A). So an EV is paused only when the site cannot give it its minimum.
3. The rest is shared out by progressive filling (everyone in a group rises together until they hit their own cap
   or a constraint fills): ``equal_share`` one group, ``priority`` one group per priority level (highest first),
   ``first_come`` one EV at a time in arrival order.
4. An EV's cap: its EVSE's and station's limits, the cable, and, when it draws clearly less than it was given (its
   measured Current.Import), its measured draw plus a headroom: the rest goes to the others.
5. Limits are rounded down to 0.1 A, so the sum never exceeds a capacity.

Phases: each EV uses some of the site's grid phases (its station's phases mapped through the station's phase
rotation); a constraint is per grid phase.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

EPSILON = 1e-9
STEP_A = 0.1  # OCPP limits are sent with one decimal; allocations are floored to this step


class Strategy:
    EQUAL_SHARE = "equal_share"
    PRIORITY = "priority"
    FIRST_COME = "first_come"


@dataclass(frozen=True, slots=True)
class Demand:
    """One running session (or a fixed load) on one EVSE."""

    key: Hashable
    phases: tuple[int, ...]  # grid phases used, 0..2
    max_a: float = math.inf  # EVSE limit, cable, EV
    station: Hashable | None = None  # for station limits
    priority: int = 0
    order: float = 0.0  # arrival (first come): smaller first
    measured_a: float | None = None  # highest measured Current.Import of its phases
    previous_a: float | None = None  # its current allocation
    fixed_a: float | None = None  # not steerable: reserve exactly this


@dataclass(frozen=True, slots=True)
class SiteLimits:
    capacity_a: tuple[float, ...]  # per grid phase (1 or 3 entries)
    min_a: float = 6.0
    strategy: str = Strategy.EQUAL_SHARE
    station_max_a: dict[Hashable, float] = field(default_factory=dict)  # per phase, per station
    underdraw_threshold_a: float = 1.0
    underdraw_headroom_a: float = 2.0


@dataclass(frozen=True, slots=True)
class Allocation:
    key: Hashable
    limit_a: float
    reason: str
    underdraw_capped: bool = False


def floor_step(value: float) -> float:
    return round(math.floor(value / STEP_A + 1e-6) * STEP_A, 1) if value > 0 else 0.0


def _fmt(value: float) -> str:
    return f"{value:.1f} A"


def _cap(demand: Demand, limits: SiteLimits) -> tuple[float, str, bool]:
    """The EV's own cap and why: its hardware limits, or its measured draw when it draws clearly less."""
    cap, why, underdraw = demand.max_a, "its EVSE limit", False
    station_max = limits.station_max_a.get(demand.station) if demand.station is not None else None
    if station_max is not None and station_max < cap:
        cap, why = station_max, "its station's limit"
    measured, previous = demand.measured_a, demand.previous_a
    if measured is not None and previous is not None and measured < previous - limits.underdraw_threshold_a:
        drawn = max(limits.min_a, measured + limits.underdraw_headroom_a)
        if drawn < cap:
            cap, why, underdraw = drawn, f"it draws {_fmt(measured)} of {_fmt(previous)}", True
    return cap, why, underdraw


class _Constraints:
    """Capacities (per grid phase of the site, per station and phase) and which EVs each one binds."""

    def __init__(self, limits: SiteLimits, demands: Sequence[Demand]) -> None:
        self.slack: dict[Hashable, float] = {("site", p): float(c) for p, c in enumerate(limits.capacity_a)}
        self.names: dict[Hashable, str] = {("site", p): f"L{p + 1}" for p in range(len(limits.capacity_a))}
        self.of: dict[Hashable, tuple[Hashable, ...]] = {}
        for d in demands:
            keys: list[Hashable] = [("site", p) for p in d.phases if ("site", p) in self.slack]
            if d.station is not None and d.station in limits.station_max_a:
                for p in d.phases:
                    key = ("station", d.station, p)
                    self.slack.setdefault(key, float(limits.station_max_a[d.station]))
                    self.names[key] = f"station {d.station} L{p + 1}"
                    keys.append(key)
            self.of[d.key] = tuple(keys)

    def room(self, key: Hashable) -> float:
        return min((self.slack[c] for c in self.of[key]), default=math.inf)

    def full(self, key: Hashable) -> str:
        if not self.of[key]:
            return "no constraint"
        tight = min(self.of[key], key=lambda c: self.slack[c])
        return self.names[tight]

    def take(self, key: Hashable, amount: float) -> None:
        for c in self.of[key]:
            self.slack[c] -= amount


def _order(demands: Iterable[Demand], strategy: str) -> list[Demand]:
    if strategy == Strategy.PRIORITY:
        return sorted(demands, key=lambda d: (-d.priority, d.order, str(d.key)))
    return sorted(demands, key=lambda d: (d.order, str(d.key)))


def _groups(admitted: list[Demand], strategy: str) -> list[list[Demand]]:
    if strategy == Strategy.FIRST_COME:
        return [[d] for d in admitted]
    if strategy == Strategy.PRIORITY:
        groups: list[list[Demand]] = []
        for d in admitted:  # already in priority order
            if groups and groups[-1][0].priority == d.priority:
                groups[-1].append(d)
            else:
                groups.append([d])
        return groups
    return [admitted] if admitted else []


def _fill(group: list[Demand], level: dict[Hashable, float], caps: dict[Hashable, float], cons: _Constraints) -> None:
    """Progressive filling: every EV of the group rises by the same amount until it reaches its cap or one of its
    constraints is full. Event-driven: the water rises by ``t``; the next event is the nearest cap (a heap) or the
    nearest full constraint; each event freezes at least one EV or fills at least one constraint."""
    start: dict[Hashable, float] = {}  # level minus t when the EV joined the rise
    cap_heap: list[tuple[float, int, Hashable]] = []
    users: dict[Hashable, int] = {}
    members: dict[Hashable, list[Hashable]] = {}
    for i, d in enumerate(group):
        key = d.key
        if caps[key] - level[key] <= EPSILON or cons.room(key) <= EPSILON:
            continue
        start[key] = level[key]
        heapq.heappush(cap_heap, (caps[key] - level[key], i, key))
        for c in cons.of[key]:
            users[c] = users.get(c, 0) + 1
            members.setdefault(c, []).append(key)
    t = 0.0

    def freeze(key: Hashable) -> None:
        level[key] = start.pop(key) + t
        for c in cons.of[key]:
            users[c] -= 1

    while start:
        step = math.inf
        for c, n in users.items():
            if n > 0:
                step = min(step, cons.slack[c] / n)
        while cap_heap and cap_heap[0][2] not in start:
            heapq.heappop(cap_heap)
        if cap_heap:
            step = min(step, cap_heap[0][0] - t)
        if step == math.inf:  # no constraint and no cap: cannot happen with a finite site capacity
            break
        step = max(step, 0.0)
        t += step
        for c, n in users.items():
            if n > 0:
                cons.slack[c] -= step * n
        while cap_heap and (cap_heap[0][2] not in start or cap_heap[0][0] - t <= EPSILON):
            _, _, key = heapq.heappop(cap_heap)
            if key in start:
                freeze(key)
        for c, n in list(users.items()):
            if n > 0 and cons.slack[c] <= EPSILON:
                for key in members[c]:
                    if key in start:
                        freeze(key)


def allocate(limits: SiteLimits, demands: Sequence[Demand]) -> dict[Hashable, Allocation]:
    """The limit (A per phase) and its reason for every demand; see the module's docstring for the rules."""
    cons = _Constraints(limits, demands)
    out: dict[Hashable, Allocation] = {}
    steerable: list[Demand] = []
    for d in demands:
        if d.fixed_a is not None:
            cons.take(d.key, d.fixed_a)
            out[d.key] = Allocation(d.key, d.fixed_a, "fixed: not steerable now")
        else:
            steerable.append(d)
    caps: dict[Hashable, float] = {}
    why: dict[Hashable, tuple[str, bool]] = {}
    level: dict[Hashable, float] = {}
    admitted: list[Demand] = []
    min_a = limits.min_a
    for d in _order(steerable, limits.strategy):
        cap, reason, underdraw = _cap(d, limits)
        caps[d.key], why[d.key] = cap, (reason, underdraw)
        if cap + EPSILON < min_a:
            out[d.key] = Allocation(d.key, 0.0, f"paused: {reason} ({_fmt(cap)}) is below the minimum {_fmt(min_a)}")
            continue
        if cons.room(d.key) + EPSILON < min_a:
            out[d.key] = Allocation(
                d.key, 0.0, f"paused: no room for the minimum {_fmt(min_a)} ({cons.full(d.key)} full)"
            )
            continue
        cons.take(d.key, min_a)
        level[d.key] = min_a
        admitted.append(d)
    for group in _groups(admitted, limits.strategy):
        _fill(group, level, caps, cons)
    label = {
        Strategy.EQUAL_SHARE: "equal share",
        Strategy.PRIORITY: "priority {priority}",
        Strategy.FIRST_COME: "first come",
    }.get(limits.strategy, limits.strategy)
    for d in admitted:
        value = floor_step(level[d.key])
        value = max(value, min_a)  # min_a was reserved whole; flooring never takes it away
        reason, underdraw = why[d.key]
        text = label.format(priority=d.priority)
        if caps[d.key] - level[d.key] <= 1e-6:
            text += f", capped: {reason}"
        else:
            text += f", {cons.full(d.key)} full"
        out[d.key] = Allocation(d.key, value, text, underdraw and caps[d.key] - level[d.key] <= 1e-6)
    return out


def totals(limits: SiteLimits, demands: Sequence[Demand], allocations: dict[Hashable, Allocation]) -> list[float]:
    """Allocated current per grid phase."""
    total = [0.0] * len(limits.capacity_a)
    for d in demands:
        for p in d.phases:
            if p < len(total):
                total[p] += allocations[d.key].limit_a
    return total
