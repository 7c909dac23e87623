"""Second baseline: a minimal OCPP 2.0.1 server built on the ``ocpp`` package (``ocpp.v201.ChargePoint`` on
``websockets.serve``). It validates messages against the same schemas but stores nothing.

    python -m bench.ocpp_server --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import signal
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from websockets.typing import Subprotocol


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MinimalCsms(ChargePoint):
    @on("BootNotification")
    async def on_boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on("Heartbeat")
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on("StatusNotification")
    async def on_status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on("TransactionEvent")
    async def on_transaction_event(self, **_: Any) -> call_result.TransactionEvent:
        return call_result.TransactionEvent()

    @on("MeterValues")
    async def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


async def _handler(ws: websockets.ServerConnection) -> None:
    identity = (ws.request.path if ws.request else "/x").rstrip("/").rsplit("/", 1)[-1]
    try:
        await MinimalCsms(identity, ws).start()
    except websockets.ConnectionClosed:
        pass


async def serve(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(
        _handler,
        host,
        port,
        subprotocols=[Subprotocol("ocpp2.0.1")],
        ping_interval=None,
        compression=None,
        backlog=4096,
    ):
        await stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
