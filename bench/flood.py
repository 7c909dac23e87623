"""Wrong-password flood figure: N concurrent handshakes with a wrong password for one registered station (from
127.0.0.2) while a legitimate station (from 127.0.0.1, in a client event loop of its own) connects, boots and
sends a Heartbeat, again and again until the flood has been answered.

    .venv/bin/python -m bench.flood [--flood 1000] [--root PATH] [--label after]

``--root`` runs the server from another checkout (e.g. an export of main, for the "before" figure); the
flooded station gets its password through that checkout's ``addstation`` (main: PBKDF2). Needs PostgreSQL at
``DATABASE_URL`` (an admin URL; a throw-away database is made) or 127.0.0.1:5432. Prints a table and writes
``bench/results/<date>-flood-<label>.json``.
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
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from bench.servers import PostgresDatabase, Server, _wait_ready, base_env, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "Zq4-w9Lr2Hc8Tn6Vb1Xe"
LEGIT_SECRET = "Pm7-k2Qs9Wd4Yh1Jf6Ua"

OCPP = [Subprotocol("ocpp2.0.1")]


def _auth(identity: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()}


async def _attempt(url: str, identity: str, password: str, local: str, timeout_s: float) -> str:
    try:
        ws = await websockets.connect(
            f"{url}/ocpp/{identity}", subprotocols=OCPP, additional_headers=_auth(identity, password),
            open_timeout=timeout_s, local_addr=(local, 0),
        )  # fmt: skip
    except InvalidStatus as exc:
        return str(exc.response.status_code)
    except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
        return "no answer"
    await ws.close()
    return "101"


async def _legit_round(url: str) -> float:
    """Handshake + BootNotification + Heartbeat of the legitimate station: seconds (negative: it failed)."""
    start = time.perf_counter()
    try:
        await _legit_exchange(url)
    except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
        return -(time.perf_counter() - start)
    return time.perf_counter() - start


async def _legit_exchange(url: str) -> None:
    async with websockets.connect(
        f"{url}/ocpp/CS-LEGIT", subprotocols=OCPP, additional_headers=_auth("CS-LEGIT", LEGIT_SECRET),
        open_timeout=60,
    ) as ws:  # fmt: skip
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "ACME", "model": "Bench"}}
        await ws.send(json.dumps([2, "b", "BootNotification", boot]))
        await asyncio.wait_for(ws.recv(), 60)
        await ws.send(json.dumps([2, "h", "Heartbeat", {}]))
        await asyncio.wait_for(ws.recv(), 60)


async def _scenario(url: str, flood: int) -> dict[str, Any]:
    quiet = [await _legit_round(url) for _ in range(5)]
    started = time.perf_counter()
    tasks = [asyncio.create_task(_attempt(url, "CS-FLOOD", f"wrong-{i}", "127.0.0.2", 60)) for i in range(flood)]
    await asyncio.sleep(0.2)  # the flood is under way
    during: list[float] = []
    while not all(t.done() for t in tasks) and len(during) < 50:
        # Its own event loop (a thread): the flood's 1,000 client sockets must not delay it on the client side.
        during.append(await asyncio.to_thread(asyncio.run, _legit_round(url)))
    outcomes = await asyncio.gather(*tasks)
    failed = [-d for d in during if d < 0]
    during = [d for d in during if d >= 0]
    worked_through = time.perf_counter() - started
    after = await _attempt(url, "CS-FLOOD", SECRET, "127.0.0.1", 60)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return {
        "flood": flood,
        "flood_worked_through_s": round(worked_through, 2),
        "flood_outcomes": counts,
        "legit_round_quiet_median_s": round(statistics.median(quiet), 4),
        "legit_rounds_during_flood": len(during) + len(failed),
        "legit_rounds_failed_during_flood": len(failed),
        "legit_round_during_flood_max_s": round(max(during), 4) if during else None,
        "legit_round_during_flood_median_s": round(statistics.median(during), 4) if during else None,
        "flooded_station_correct_password_after": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with PostgresDatabase(admin_url) as database:
        env = base_env() | {"DATABASE_URL": database.url, "CSMS_MESSAGE_LOG": "errors"}
        run = {"cwd": args.root, "env": env, "check": True, "timeout": 300}
        python = [sys.executable, "manage.py"]
        subprocess.run([*python, "migrate", "--noinput", "-v0"], **run)
        subprocess.run([*python, "addstation", "CS-FLOOD", "--password", SECRET], **run, stdout=subprocess.DEVNULL)
        subprocess.run(
            [*python, "addstation", "CS-LEGIT", "--password", LEGIT_SECRET], **run, stdout=subprocess.DEVNULL
        )
        port = free_port()
        log_path = ROOT / "var" / "bench-logs" / f"flood-{args.label}-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--websocket_timeout", "-1",
             "--websocket_connect_timeout", "30", "csms.asgi:application"],
            cwd=args.root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = Server(f"flood-{args.label}", port, process, log_path, log)
        try:
            _wait_ready(server, http=True)
            result = asyncio.run(_scenario(server.ws_url, args.flood))
        finally:
            server.stop()
    result |= {"label": args.label, "root": str(args.root), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    for key, value in result.items():
        print(f"{key:40} {value}")
    out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}-flood-{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
