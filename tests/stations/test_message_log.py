"""The message log's writer: its columns come from the model, strings are cut to their column, and the buffer is
bounded (the oldest rows go first) while the database refuses the writes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, models
from django.test.utils import isolate_apps
from django.utils import timezone

from stations import message_log
from stations.models import MessageLog

AT = datetime(2026, 1, 1, tzinfo=UTC)
DROPPED_ONE_BY_ONE = "message log: %d rows dropped (station or connection deleted meanwhile, or invalid)"


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
    """The connection as the writer sees it on another backend (SQLite): the ORM's bulk_create path."""

    vendor = "sqlite"

    def __getattr__(self, name: str) -> Any:
        return getattr(connection, name)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["copy", "bulk_create"])
def test_over_long_strings_are_cut_to_their_column_in_the_batch(station_factory, caplog, monkeypatch, path) -> None:
    station = station_factory("CS-1")
    if path == "bulk_create":
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
def test_row_by_row_path_cuts_strings_too_and_logs_the_number_of_rows_it_dropped(station_factory, caplog) -> None:
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
def test_a_column_added_to_the_model_is_written_in_the_batch_with_its_default(caplog) -> None:
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
    caplog.set_level(logging.INFO, logger="stations.message_log")
    message_log.rows_write([
        {"direction": "in", "message_id": "a", "payload": {"k": [1]}, "created_at": AT},
        {"direction": "out", "message_id": "b", "note": "n" * 20, "origin": "given"},
        {"direction": "in", "message_id": "c", "created_at": AT},
    ], model=WideLog)  # fmt: skip
    rows = list(WideLog.objects.order_by("message_id").values_list("message_id", "payload", "note", "origin"))
    assert rows == [("a", {"k": [1]}, "none", "db"), ("b", None, "n" * 8, "given"), ("c", None, "none", "db")]
    assert WideLog.objects.get(message_id="b").created_at is not None  # the callable default, per row
    assert _messages(caplog) == []
