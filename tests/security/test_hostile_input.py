"""Hostile input against a live server never takes it down: idle sockets, a handshake and a frame trickled a byte
at a time, invalid UTF-8, JSON nested 100,000 deep; a second station is answered throughout."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

import pytest

from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.live

IDLE_SOCKETS = 100


def ws_frame(payload: bytes, *, opcode: int = 0x1) -> bytes:
    """One masked client frame (RFC 6455 §5.2); payloads below 64 KiB."""
    mask = os.urandom(4)
    length = len(payload)
    header = bytes([0x80 | opcode])
    header += bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + struct.pack("!H", length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


async def raw_handshake(port: int, identity: str, *, trickle_s: float = 0.0) -> tuple[Any, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ocpp/{identity} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp2.0.1\r\n\r\n"
    ).encode()
    if trickle_s:
        for i in range(len(request)):
            writer.write(request[i : i + 1])
            await writer.drain()
            await asyncio.sleep(trickle_s)
    else:
        writer.write(request)
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


def test_hostile_clients_are_refused_or_closed_while_another_station_is_answered(live_server_ws, station_factory):
    for identity in ("GOOD-1", "TRICKLE-1", "UTF8-1", "DEEP-1"):
        station_factory(identity)
    port = live_server_ws.port

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {"heartbeats": 0, "errors": []}
        stop = asyncio.Event()
        async with RawStation.connect(live_server_ws.ws_url, "GOOD-1") as good:
            await good.boot()
            await wait_online("GOOD-1")

            async def keep_beating() -> None:
                while not stop.is_set():
                    reply = await good.call("Heartbeat", {})
                    if reply[0] == 3:
                        out["heartbeats"] += 1
                    else:
                        out["errors"].append(reply)
                    await asyncio.sleep(0.05)

            beating = asyncio.create_task(keep_beating())
            # Sockets that connect and say nothing (Twisted closes them after its 60 s request timeout).
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE_SOCKETS)]

            # A handshake and a CALL trickled a byte at a time: answered like any other.
            reader, writer = await raw_handshake(port, "TRICKLE-1", trickle_s=0.002)
            boot = {"chargingStation": {"model": "Slow", "vendorName": "Loris"}, "reason": "PowerUp"}
            frame = ws_frame(json.dumps([2, "t-1", "BootNotification", boot]).encode())
            for i in range(len(frame)):
                writer.write(frame[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0.002)
            opcode, payload = await asyncio.wait_for(read_frame(reader), 30)
            out["trickled"] = (opcode, json.loads(payload)[:2])
            writer.close()

            # Invalid UTF-8 in a text frame: the WebSocket fails (RFC 6455 §8.1; autobahn drops the TCP
            # connection), nothing reaches the application, and the close is recorded.
            reader, writer = await raw_handshake(port, "UTF8-1")
            writer.write(ws_frame(b'[2, "u-1", "Heartbeat", {"x": "\xff\xfe"}]'))
            try:
                rest = await asyncio.wait_for(reader.read(), 30)
                out["utf8"] = "closed" if not rest or rest[0] & 0x0F == 0x8 else rest
            except ConnectionResetError:
                out["utf8"] = "closed"
            writer.close()

            # JSON nested 100,000 deep: a CALLERROR, and the connection stays usable.
            async with RawStation.connect(live_server_ws.ws_url, "DEEP-1") as deep:
                await deep.boot()
                out["deep"] = await deep.call_raw("[" * 100_000 + "]" * 100_000)
                out["deep_after"] = (await deep.call("Heartbeat", {}))[0]

            out["good_during"] = out["heartbeats"]
            stop.set()
            await beating
            for _, idle_writer in idle:
                idle_writer.close()
        return out

    out = run(scenario())
    assert out["errors"] == []
    assert out["good_during"] >= 5  # the good station kept being answered while the hostile clients were served
    assert out["trickled"] == (0x1, [3, "t-1"])
    assert out["utf8"] == "closed"
    assert out["deep"][0] == 4 and out["deep"][2] == "RpcFrameworkError"
    assert out["deep_after"] == 3
