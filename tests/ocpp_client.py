"""A small raw OCPP-J station client for wire-level tests: sends exact frames, returns exact replies.

``RawStation`` talks to a live server over a real socket; ``AsgiStation`` is the same client driving the ASGI
application in the test process (Channels' ``WebsocketCommunicator``), for tests of what a station is answered.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
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


class _Station:
    """The frames a station sends and reads; subclasses supply the transport (``send_raw``, ``recv``)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.incoming_calls: asyncio.Queue[list[Any]] = asyncio.Queue()

    async def send_raw(self, text: str) -> None:
        raise NotImplementedError

    async def recv(self, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
        raise NotImplementedError

    async def call_raw(self, text: str, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
        """Send one frame, return the next reply frame (CALLRESULT/CALLERROR), queueing any CSMS CALL seen."""
        await self.send_raw(text)
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


class RawStation(_Station):
    """One station's socket. Use as ``async with RawStation.connect(url, identity) as st``."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__()
        self.ws = ws

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

    async def close(self) -> None:
        await self.ws.close()


class _Connect(contextlib.AbstractAsyncContextManager[RawStation]):
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


class AsgiStation(_Station):
    """A station on the ASGI application itself, in this process: no daphne, no socket, the same frames.

    Use as ``async with AsgiStation.connect(application, identity) as st``.
    """

    # The peer address daphne would put in the scope (the connection log records it).
    CLIENT = ("127.0.0.1", 50001)

    def __init__(self, communicator: Any) -> None:
        super().__init__()
        self.communicator = communicator

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        application: Any,
        identity: str,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[AsgiStation]:
        from channels.testing import WebsocketCommunicator

        communicator = WebsocketCommunicator(
            application,
            f"/ocpp/{identity}",
            headers=[(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()],
            subprotocols=[SUBPROTOCOL] if subprotocols is None else subprotocols,
        )
        communicator.scope["client"] = cls.CLIENT
        # Generous timeouts: the handshake and every CALL wait for PostgreSQL on a shared machine.
        accepted, close_code = await communicator.connect(timeout=10)
        if not accepted:
            raise ConnectionRefusedError(f"{identity}: handshake refused (close code {close_code})")
        try:
            yield cls(communicator)
        finally:
            # Returns once the consumer has finished its disconnect (the close is recorded).
            await communicator.disconnect(timeout=10)

    async def send_raw(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            await self.communicator.send_to(bytes_data=text)
        else:
            await self.communicator.send_to(text_data=text)

    async def recv(self, timeout: float = 10) -> list[Any]:  # noqa: ASYNC109
        return json.loads(await self.communicator.receive_from(timeout))


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
