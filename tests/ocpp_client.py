"""A small raw OCPP-J station client for wire-level tests: sends exact frames, returns exact replies."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

SUBPROTOCOL = "ocpp2.0.1"


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


BOOT: dict[str, Any] = {
    "reason": "PowerUp",
    "chargingStation": {
        "vendorName": "ACME",
        "model": "Wallbox-1",
        "serialNumber": "SN-0001",
        "firmwareVersion": "1.2.3",
    },
}


class RawStation:
    """One station's socket. Use as ``async with RawStation.connect(url, identity) as st``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.incoming_calls: asyncio.Queue[list[Any]] = asyncio.Queue()

    @classmethod
    def connect(
        cls,
        base_url: str,
        identity: str,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> _Connect:
        return _Connect(cls, base_url, identity, subprotocols, headers)

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def call_raw(self, text: str, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
        """Send one frame, return the next reply frame (CALLRESULT/CALLERROR), queueing any CSMS CALL seen."""
        await self.ws.send(text)
        while True:
            frame = await self.recv(timeout)
            if frame[0] == 2:
                await self.incoming_calls.put(frame)
                continue
            return frame

    async def call(self, action: str, payload: dict[str, Any], message_id: str | None = None) -> list[Any]:
        unique_id = message_id or f"m{next(self._ids)}"
        return await self.call_raw(json.dumps([2, unique_id, action, payload]))

    async def boot(self, payload: dict[str, Any] | None = None) -> list[Any]:
        return await self.call("BootNotification", payload or BOOT)

    async def close(self) -> None:
        await self.ws.close()


class _Connect:
    def __init__(
        self,
        cls: type[RawStation],
        base_url: str,
        identity: str,
        subprotocols: list[str] | None,
        headers: dict[str, str] | None,
    ) -> None:
        self.cls, self.url = cls, f"{base_url}/ocpp/{identity}"
        self.subprotocols = [Subprotocol(p) for p in ([SUBPROTOCOL] if subprotocols is None else subprotocols)]
        self.headers = headers
        self.station: RawStation | None = None

    async def __aenter__(self) -> RawStation:
        ws = await websockets.connect(
            self.url,
            subprotocols=self.subprotocols or None,
            additional_headers=self.headers,
            open_timeout=10,
            max_size=None,
        )
        self.station = self.cls(ws)
        return self.station

    async def __aexit__(self, *exc: object) -> None:
        assert self.station is not None
        await self.station.ws.close()


def run(coro: Any) -> Any:
    """Run a client scenario from a sync test (the ORM assertions then run outside any event loop).

    Playwright's sync API leaves an event loop attached to the main thread; then the scenario gets a thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
