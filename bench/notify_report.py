"""Device-model figure: a NotifyReport of 5,000 variables in 10 parts of 500, sent by one station over a real
socket to a live daphne on PostgreSQL; each part's round trip (its CALLRESULT goes out once the part is committed),
the whole report, and the same report again (every variable already stored: the upsert path).

    .venv/bin/python -m bench.notify_report [--variables 5000] [--parts 10]

Needs PostgreSQL at ``DATABASE_URL`` (an admin URL; a throw-away database is made) or 127.0.0.1:5432. Prints a
table and writes ``bench/results/<date>-notify-report.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from websockets.typing import Subprotocol

from bench.servers import PostgresDatabase, base_env, start

ROOT = Path(__file__).resolve().parent.parent
OCPP = [Subprotocol("ocpp2.0.1")]
BOOT = {"reason": "PowerUp", "chargingStation": {"vendorName": "CSMS-bench", "model": "DM"}}


def entry(i: int) -> dict[str, Any]:
    return {
        "component": {"name": f"Ctrlr{i // 100}", "evse": {"id": 1 + i % 2}},
        "variable": {"name": f"Variable{i}"},
        "variableAttribute": [{"type": "Actual", "value": str(i), "mutability": "ReadWrite", "persistent": True}],
        "variableCharacteristics": {"dataType": "integer", "unit": "s", "supportsMonitoring": i % 3 == 0},
    }


async def _call(ws: Any, message_id: str, action: str, payload: dict[str, Any]) -> float:
    started = time.perf_counter()
    await ws.send(json.dumps([2, message_id, action, payload]))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 120))
    if reply[0] != 3:
        raise RuntimeError(f"{action} {message_id}: {reply}")
    return time.perf_counter() - started


async def _report(ws: Any, request_id: int, variables: int, parts: int) -> tuple[list[float], float]:
    per_part = variables // parts
    started = time.perf_counter()
    times = []
    for seq in range(parts):
        data = [entry(i) for i in range(seq * per_part, (seq + 1) * per_part)]
        payload = {
            "requestId": request_id,
            "generatedAt": datetime.now(UTC).isoformat(),
            "seqNo": seq,
            "tbc": seq < parts - 1,
            "reportData": data,
        }
        times.append(await _call(ws, f"r{request_id}-{seq}", "NotifyReport", payload))
    return times, time.perf_counter() - started


async def _scenario(url: str, variables: int, parts: int) -> dict[str, Any]:
    async with websockets.connect(f"{url}/ocpp/DM-BENCH", subprotocols=OCPP, max_size=None) as ws:
        await _call(ws, "boot", "BootNotification", BOOT)
        first, first_total = await _report(ws, 1, variables, parts)
        again, again_total = await _report(ws, 2, variables, parts)
    return {
        "variables": variables,
        "parts": parts,
        "first_report_s": round(first_total, 3),
        "first_part_median_ms": round(statistics.median(first) * 1000, 1),
        "first_part_max_ms": round(max(first) * 1000, 1),
        "again_report_s": round(again_total, 3),
        "again_part_median_ms": round(statistics.median(again) * 1000, 1),
        "again_part_max_ms": round(max(again) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variables", type=int, default=5000)
    parser.add_argument("--parts", type=int, default=10)
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with PostgresDatabase(admin_url) as database:
        env = base_env() | {"DATABASE_URL": database.url, "CSMS_MESSAGE_LOG": "errors"}
        run: dict[str, Any] = {"cwd": ROOT, "env": env, "check": True, "timeout": 300}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], **run)
        subprocess.run([sys.executable, "manage.py", "addstation", "DM-BENCH"], **run, stdout=subprocess.DEVNULL)
        server = start("notify-report", env)
        try:
            result = asyncio.run(_scenario(server.ws_url, args.variables, args.parts))
        finally:
            server.stop()
    result |= {"at": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count()}
    for key, value in result.items():
        print(f"{key:28} {value}")
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-notify-report.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
