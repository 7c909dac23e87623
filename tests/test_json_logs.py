"""``CSMS_LOG_FORMAT=json``: every line a JSON object; the station path's lines carry the station identity, the
message id and the action, also from the database threads."""

from __future__ import annotations

import json
import logging

from csms import logs
from csms.dbpool import db
from tests.conftest import wait_until
from tests.ocpp_client import RawStation, run


def test_a_live_server_logs_json_lines_with_the_station_and_message(csms_server, station_factory):
    station_factory("LOG-1")
    server = csms_server("json-logs", CSMS_LOG_FORMAT="json")

    async def scenario() -> None:
        async with RawStation.connect(server.ws_url, "LOG-1") as st:
            reply = await st.call("Heartbeat", {}, message_id="hb-before-boot")  # refused: not booted yet
            assert reply[2] == "SecurityError"

    run(scenario())

    def refused_line() -> dict | None:
        for line in server.log().splitlines():
            if line.startswith("{") and "SecurityError" in line:
                return json.loads(line)
        return None

    assert wait_until(lambda: refused_line() is not None, timeout_s=10)
    entry = refused_line()
    assert entry is not None
    assert (entry["station"], entry["message_id"], entry["action"], entry["level"]) == (
        "LOG-1",
        "hb-before-boot",
        "Heartbeat",
        "WARNING",
    )
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line)["logger"] for line in lines)


def test_the_context_goes_with_the_work_into_the_database_threads():
    async def scenario() -> tuple[str, str]:
        logs.station_context(identity="CTX-1", unique_id="m-7", action="MeterValues")
        return await db(lambda: (logs.station_identity.get(), logs.message_id.get()))()

    assert run(scenario()) == ("CTX-1", "m-7")


def test_formatter_writes_the_exception_and_leaves_out_empty_fields():
    record = logging.LogRecord("csms.test", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["message"] == "boom x" and "ValueError: bad" in entry["exception"]
    assert "station" not in entry
