"""CPU per stored event on the station path's database side, in one process (no daphne, no load generator: a
figure that holds on a busy machine, where wall-clock rates do not): the bench's TransactionEvent + MeterValues mix
(Started, then Updated + MeterValues pairs, Ended every 10 updates) parsed, validated and committed either one CALL
per transaction (``call_commit``, the path before group commit) or in groups (``calls_commit_group``).

    python -m bench.write_path --stations 100 --rounds 20 --group 1 --group 64

A fresh database on BENCH_PG_URL (migrated, dropped afterwards). Prints events, CPU ms per event (this process:
Python and the PostgreSQL client; the server's own CPU is reported apart) and wall events/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import harness, servers


def mix(stations: int, rounds: int, start: datetime) -> list[list[tuple[int, str, dict[str, Any]]]]:
    """Per round, one CALL per station: (station index, action, payload), the bench's session shape."""
    out: list[list[tuple[int, str, dict[str, Any]]]] = []
    seq = [0] * stations
    tx = [0] * stations
    energy = [0.0] * stations
    step = 0  # 0: Started; odd: Updated; even: MeterValues; after 10 updates: Ended
    phase = [0] * stations
    for r in range(rounds):
        stamp = (start + timedelta(seconds=r)).isoformat().replace("+00:00", "Z")
        calls = []
        for i in range(stations):
            step = phase[i]
            energy[i] += 100
            mv = [{"timestamp": stamp, "sampledValue": [
                {"value": energy[i], "measurand": "Energy.Active.Import.Register", "context": "Sample.Periodic",
                 "unitOfMeasure": {"unit": "Wh"}},
                {"value": 7400, "measurand": "Power.Active.Import", "context": "Sample.Periodic",
                 "unitOfMeasure": {"unit": "W"}},
            ]}]  # fmt: skip
            base = {"timestamp": stamp, "seqNo": seq[i], "evse": {"id": 1, "connectorId": 1}, "meterValue": mv}
            info = {"transactionId": f"T{i}-{tx[i]}", "chargingState": "Charging"}
            if step == 0:
                payload = base | {"eventType": "Started", "triggerReason": "Authorized", "transactionInfo": info,
                                  "idToken": {"idToken": "BENCH", "type": "ISO14443"}}  # fmt: skip
                calls.append((i, "TransactionEvent", payload))
                seq[i] += 1
            elif step == 21:
                info |= {"chargingState": "Idle", "stoppedReason": "Local"}
                payload = base | {"eventType": "Ended", "triggerReason": "StopAuthorized", "transactionInfo": info}
                calls.append((i, "TransactionEvent", payload))
                seq[i], tx[i] = 0, tx[i] + 1
            elif step % 2:
                payload = base | {
                    "eventType": "Updated",
                    "triggerReason": "MeterValuePeriodic",
                    "transactionInfo": info,
                }
                calls.append((i, "TransactionEvent", payload))
                seq[i] += 1
            else:
                calls.append((i, "MeterValues", {"evseId": 1, "meterValue": mv}))
            phase[i] = 0 if step == 21 else step + 1
        out.append(calls)
    return out


def measure(stations: int, rounds: int, group: int) -> dict[str, Any]:
    from csms.ocpp import frames, router, schemas
    from stations import calls
    from stations.services import station_register

    ids = [station_register(identity=f"WP-{group}-{i:04d}")[0].pk for i in range(stations)]
    rounds_of = mix(stations, rounds + 2, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=group))

    def works(round_calls: list[tuple[int, str, dict[str, Any]]], r: int) -> list[calls.CallWork]:
        out = []
        for i, action, payload in round_calls:
            text = json.dumps([2, f"m{r}-{i}", action, payload])
            call = frames.parse(text)  # what the consumer does per frame: parse, route, validate once
            assert isinstance(call, frames.Call)
            route = router.route_for(action)
            schemas.validate(action, "Request", call.payload)
            ctx = router.CallContext(station_id=ids[i], identity=f"WP-{i}", unique_id=call.unique_id, action=action)
            out.append(calls.CallWork(route, ctx, call, call.payload, touch_last_seen=False))
        return out

    def apply(ws: list[calls.CallWork]) -> None:
        if group <= 1:
            for w in ws:
                calls.call_commit(route=w.route, ctx=w.ctx, call=w.call, payload=w.payload, touch_last_seen=False)
            return
        for start in range(0, len(ws), group):
            outcomes = calls.calls_commit_group(works=ws[start : start + group])
            bad = [o for o in outcomes if isinstance(o, Exception)]
            assert not bad, bad[:3]

    for r in range(2):  # warm-up: statements compiled and prepared, sessions started
        apply(works(rounds_of[r], r))
    pg_before = harness.cpu_by_pid(harness.postgres_pids(os.environ.get("DATABASE_URL")))
    profiler = None
    if os.environ.get("WRITE_PATH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    cpu, wall, events = time.process_time(), time.monotonic(), 0
    for r in range(2, rounds + 2):
        ws = works(rounds_of[r], r)
        apply(ws)
        events += len(ws)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{os.environ['WRITE_PATH_PROFILE']}-{group}.prof")
    pg_after = harness.cpu_by_pid(list(pg_before))
    pg = sum(pg_after[p] - v for p, v in pg_before.items() if p in pg_after)
    return {
        "group": group,
        "events": events,
        "cpu_ms_per_event": round(cpu * 1000 / events, 3),
        "postgres_cpu_ms_per_event": round(pg * 1000 / events, 3),
        "wall_events_per_s": round(events / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--group", type=int, action="append", default=[])
    args = parser.parse_args()
    with servers.PostgresDatabase(harness.PG_ADMIN_URL) as db:
        env = harness.pg_env(db.url)
        servers.migrate(env)
        os.environ.update({"DATABASE_URL": db.url, "REDIS_URL": env["REDIS_URL"], "CSMS_LOG_LEVEL": "WARNING"})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "csms.settings")
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        import django

        django.setup()
        from django.db import connections

        results = [measure(args.stations, args.rounds, g) for g in (args.group or [1, 64])]
        connections.close_all()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
