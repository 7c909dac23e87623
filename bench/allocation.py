"""CPU time of one site allocation (``smartcharging.allocation.allocate``) for a site of 200 stations and 400 EVSEs.

    python -m bench.allocation [--runs 200] [--out bench/results/<date>-allocation.json]

Scenarios (every EVSE charging): equal share with identical EVs; a realistic mix (1- and 3-phase EVs on rotated
stations, EVSE and station limits, a third of the EVs drawing less than they were given); priority with four
token groups; first come. Prints the median and p95 CPU milliseconds per allocation (``time.process_time``).
The pure function only: the recompute job adds its queries and the SetChargingProfile commands of the EVSEs whose
allocation changed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from smartcharging.allocation import Demand, SiteLimits, Strategy, allocate

STATIONS, EVSES_PER_STATION = 200, 2


def _uniform() -> tuple[SiteLimits, list[Demand]]:
    demands = [
        Demand(key=(s, e), phases=(0, 1, 2), station=s, order=float(s * 2 + e))
        for s in range(STATIONS)
        for e in range(EVSES_PER_STATION)
    ]
    return SiteLimits(capacity_a=(2000.0, 2000.0, 2000.0)), demands


def _mixed(strategy: str) -> tuple[SiteLimits, list[Demand]]:
    rng = random.Random(200)
    rotations = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    demands = []
    for s in range(STATIONS):
        rotation = rotations[s % 3]
        for e in range(EVSES_PER_STATION):
            phases = (rotation[0],) if rng.random() < 0.3 else tuple(sorted(rotation))
            previous = rng.uniform(6, 32)
            measured = previous * rng.uniform(0.2, 0.8) if rng.random() < 0.33 else None
            demands.append(
                Demand(
                    key=(s, e),
                    phases=phases,
                    max_a=rng.choice([16.0, 32.0, 32.0, 63.0]),
                    station=s,
                    priority=rng.randrange(4),
                    order=rng.uniform(0, 3600),
                    measured_a=measured,
                    previous_a=previous,
                )
            )
    limits = SiteLimits(
        capacity_a=(2500.0, 2400.0, 2600.0),
        strategy=strategy,
        station_max_a={s: 48.0 for s in range(0, STATIONS, 4)},
    )
    return limits, demands


SCENARIOS: dict[str, Callable[[], tuple[SiteLimits, list[Demand]]]] = {
    "equal share, identical EVs": _uniform,
    "equal share, realistic mix": lambda: _mixed(Strategy.EQUAL_SHARE),
    "priority (4 groups), realistic mix": lambda: _mixed(Strategy.PRIORITY),
    "first come, realistic mix": lambda: _mixed(Strategy.FIRST_COME),
}


def measure(runs: int) -> dict[str, dict[str, float]]:
    results = {}
    for name, build in SCENARIOS.items():
        limits, demands = build()
        allocate(limits, demands)  # warm up
        samples = []
        for _ in range(runs):
            started = time.process_time()
            allocate(limits, demands)
            samples.append((time.process_time() - started) * 1000)
        samples.sort()
        results[name] = {
            "evses": len(demands),
            "median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = measure(args.runs)
    print(f"{'scenario':40} {'EVSEs':>6} {'median ms':>10} {'p95 ms':>8}")
    for name, figures in results.items():
        print(f"{name:40} {figures['evses']:>6} {figures['median_ms']:>10} {figures['p95_ms']:>8}")
    if args.out:
        document = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "runs": args.runs, "results": results}
        args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
