"""The live servers' log as tests see it: one file per daphne process for the whole session, one view per test."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer
from tests.ocpp_client import RawStation, basic_auth, run

pytestmark = pytest.mark.live


def test_a_view_of_the_log_holds_only_what_was_logged_after_it_was_taken(
    live_server_ws: LiveServer, station_factory: Any
) -> None:
    station_factory("CS-1", password="s3cret-Passw0rd")

    async def refused_handshake() -> None:
        with pytest.raises(InvalidStatus):
            async with RawStation.connect(live_server_ws.ws_url, "CS-1", headers=basic_auth("CS-1", "wrong")):
                pass

    run(refused_handshake())
    assert "wrong password" in live_server_ws.log()
    # The next test's view of the same process starts after these lines: it cannot pass on this test's output.
    later = live_server_ws.view()
    assert "wrong password" not in later.log()
    assert "wrong password" in later.log_path.read_text()
