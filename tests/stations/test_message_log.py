"""The message log's writer: its columns come from the model, strings are cut to their column, and the buffer is
bounded (the oldest rows go first) while the database refuses the writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from django.db import connection, connections, models
from django.test.utils import isolate_apps
from django.utils import timezone

from stations import message_log
from stations.models import MessageLog
from tests.ocpp_client import run

AT = datetime(2026, 1, 1, tzinfo=UTC)
DROPPED_ONE_BY_ONE = "message log: %d rows dropped (station or connection deleted meanwhile, or invalid)"
DROPPED_FROM_BUFFER = "message log: %d rows dropped so far (the database is not taking them)"


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stations.message_log"]


@pytest.mark.django_db
def test_the_writer_fills_every_column_of_the_model_and_table_but_the_id() -> None:
    written = [c.name for c in message_log.columns(MessageLog)]
    assert written == [f.column for f in MessageLog._meta.concrete_fields if f.column != "id"]
    with connection.cursor() as cursor:
        table = connection.introspection.get_table_description(cursor, MessageLog._meta.db_table)
    assert sorted(written) == sorted(c.name for c in table if c.name != "id")


class _NotPostgres:
    """The connection as the writer sees it on another backend (SQLite): one INSERT run for every row."""

    vendor = "sqlite"

    def __getattr__(self, name: str) -> Any:
        return getattr(connection, name)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["copy", "insert"])
def test_over_long_strings_are_cut_to_their_column_in_the_batch(
    station_factory: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    station = station_factory("CS-1")
    if path == "insert":
        monkeypatch.setattr(message_log, "connection", _NotPostgres())
    caplog.set_level(logging.INFO, logger="stations.message_log")
    message_log.rows_write([
        {"station_id": station.pk, "direction": "in", "message_type": 4, "message_id": "i" * 40, "action": "a" * 60,
         "error_code": "c" * 50, "error_description": "d" * 300, "created_at": AT},
        {"station_id": station.pk, "direction": "out", "message_id": "short", "created_at": AT},
    ])  # fmt: skip
    assert list(
        MessageLog.objects.order_by("id").values_list("message_id", "action", "error_code", "error_description")
    ) == [("i" * 36, "a" * 50, "c" * 40, "d" * 255), ("short", "", "", "")]
    assert _messages(caplog) == []  # one batch: not the row-by-row path


@pytest.mark.django_db
def test_row_by_row_path_cuts_strings_too_and_logs_the_number_of_rows_it_dropped(
    station_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kept = station_factory("CS-KEPT")
    gone = station_factory("CS-GONE")
    gone_pk = gone.pk
    gone.delete()
    caplog.set_level(logging.INFO, logger="stations.message_log")
    message_log.rows_write([
        {"station_id": kept.pk, "direction": "in", "message_id": "a", "created_at": AT},
        {"station_id": gone_pk, "direction": "in", "message_id": "b", "created_at": AT},
        {"station_id": kept.pk, "direction": "in", "message_id": "c" * 37, "created_at": AT},
        {"station_id": gone_pk, "direction": "out", "message_id": "b", "created_at": AT},
        {"station_id": kept.pk, "direction": "out", "message_id": "a", "created_at": AT},
    ])  # fmt: skip
    assert list(MessageLog.objects.order_by("id").values_list("direction", "message_id")) == [
        ("in", "a"), ("in", "c" * 36), ("out", "a"),
    ]  # fmt: skip
    assert _messages(caplog) == [DROPPED_ONE_BY_ONE % 2]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["copy", "insert"])
def test_a_column_added_to_the_model_is_written_in_the_batch_with_its_default(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    with isolate_apps("stations"):  # a model of its own app registry: its table lives in this test's transaction

        class WideLog(models.Model):  # noqa: DJ008
            direction = models.CharField(max_length=3)
            message_id = models.CharField(max_length=36, blank=True)
            payload = models.JSONField(null=True, blank=True)
            created_at = models.DateTimeField(default=timezone.now)
            # Added later: NOT NULL without a database default (what AddField leaves), and one the database fills.
            note = models.CharField(max_length=8, default="none")
            origin = models.CharField(max_length=8, db_default="db")

            class Meta:
                app_label = "stations"

    with connection.schema_editor() as editor:
        editor.create_model(WideLog)
    if path == "insert":
        monkeypatch.setattr(message_log, "connection", _NotPostgres())
    caplog.set_level(logging.INFO, logger="stations.message_log")
    message_log.rows_write([
        {"direction": "in", "message_id": "a", "payload": {"k": [1]}, "created_at": AT},
        {"direction": "out", "message_id": "b", "note": "n" * 20, "origin": "given"},
        {"direction": "in", "message_id": "c", "created_at": AT},
    ], model=WideLog)  # fmt: skip
    rows = list(WideLog._default_manager.order_by("message_id").values_list("message_id", "payload", "note", "origin"))
    assert rows == [("a", {"k": [1]}, "none", "db"), ("b", None, "n" * 8, "given"), ("c", None, "none", "db")]
    assert WideLog._default_manager.get(message_id="b").created_at is not None  # the callable default, per row
    assert _messages(caplog) == []


# --- The bounded buffer while the database refuses the writes -------------------------------------------------------


@pytest.fixture
def bounded_writer(settings: Any, db_failure_trigger: Callable[[str], None]) -> Iterator[None]:
    """A writer for at most 5 pending rows, flushing every 10 ms, in front of a message-log table refusing every
    INSERT (until the test drops the trigger)."""
    settings.CSMS_MESSAGE_LOG_MAX_PENDING = 5
    settings.CSMS_MESSAGE_LOG_FLUSH_MS = 10
    db_failure_trigger("stations_messagelog")
    # The writer's database threads close their connection after each call: none is left open on the test database.
    db_settings = connections["default"].settings_dict
    conn_max_age, db_settings["CONN_MAX_AGE"] = db_settings["CONN_MAX_AGE"], 0
    yield
    db_settings["CONN_MAX_AGE"] = conn_max_age


def _entries(*ids: int) -> list[dict[str, Any]]:
    return [{"direction": "in", "message_type": 2, "message_id": f"m{i}", "action": "Heartbeat"} for i in ids]


async def _until(predicate: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _failed_writes(caplog: pytest.LogCaptureFixture) -> int:
    return sum(m.startswith("message log: could not write") for m in _messages(caplog))


def _drop_trigger() -> None:
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("DROP TRIGGER csms_test_fail ON stations_messagelog")


def _logged_ids(station_id: int) -> list[str]:
    return list(MessageLog.objects.filter(station_id=station_id).order_by("id").values_list("message_id", flat=True))


def test_a_full_buffer_drops_its_oldest_rows_and_writes_the_newest_once_the_database_recovers(
    bounded_writer: None, station_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    station = station_factory("CS-1")
    caplog.set_level(logging.INFO, logger="stations.message_log")

    async def scenario() -> message_log.MessageLogWriter:
        writer = message_log.writer()
        writer.add(station_id=station.pk, connection_id=None, entries=_entries(0, 1, 2))
        await _until(lambda: _failed_writes(caplog) == 1)  # refused: the 3 rows are back in the buffer
        assert (len(writer._rows), writer.dropped) == (3, 0)
        writer.add(station_id=station.pk, connection_id=None, entries=_entries(*range(3, 10)))
        assert (len(writer._rows), writer.dropped) == (5, 5)
        writer.add(station_id=station.pk, connection_id=None, entries=_entries(10))
        assert [r["message_id"] for r in writer._rows] == ["m6", "m7", "m8", "m9", "m10"]
        _drop_trigger()
        assert writer._task is not None
        await asyncio.wait_for(writer._task, 10)
        return writer

    writer = run(scenario())  # not asyncio.run: a Playwright test may leave a loop on this thread
    assert writer.dropped == 6
    assert _logged_ids(station.pk) == ["m6", "m7", "m8", "m9", "m10"]
    # The first drop is logged with its count; later ones only at every thousandth.
    assert [m for m in _messages(caplog) if "dropped" in m] == [DROPPED_FROM_BUFFER % 5]


def test_rows_added_while_a_refused_batch_was_out_count_against_the_bound(
    bounded_writer: None, station_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    station = station_factory("CS-1")
    caplog.set_level(logging.INFO, logger="stations.message_log")

    async def scenario() -> message_log.MessageLogWriter:
        writer = message_log.writer()
        with psycopg.connect(**connection.get_connection_params()) as other:
            other.execute("LOCK TABLE stations_messagelog IN ACCESS EXCLUSIVE MODE")  # the batch waits on it
            writer.add(station_id=station.pk, connection_id=None, entries=_entries(0, 1, 2, 3))
            await _until(lambda: not writer._rows)  # the 4 rows are out, in the waiting batch
            writer.add(station_id=station.pk, connection_id=None, entries=_entries(4, 5, 6, 7))
            assert writer.dropped == 0  # 4 pending: within the bound
            other.rollback()  # the batch goes on, and is refused
        await _until(lambda: _failed_writes(caplog) == 1)
        assert [r["message_id"] for r in writer._rows] == ["m3", "m4", "m5", "m6", "m7"]
        _drop_trigger()
        assert writer._task is not None
        await asyncio.wait_for(writer._task, 10)
        return writer

    writer = run(scenario())  # not asyncio.run: a Playwright test may leave a loop on this thread
    assert writer.dropped == 3
    assert _logged_ids(station.pk) == ["m3", "m4", "m5", "m6", "m7"]
    assert [m for m in _messages(caplog) if "dropped" in m] == [DROPPED_FROM_BUFFER % 3]
