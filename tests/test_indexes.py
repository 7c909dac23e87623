"""Indexes: none that a longer one already leads (each costs an update per row written and serves no lookup the
longer one does not)."""

from __future__ import annotations

import pytest
from django.db import connection

from stations.models import MessageLog, StationEvent, StatusNotificationRecord
from transactions.models import MeterSample, TransactionEventRecord

pytestmark = pytest.mark.django_db

# The tables written per station message: every index there is paid for on the hot path.
HOT_TABLES = [
    m._meta.db_table for m in (MeterSample, TransactionEventRecord, MessageLog, StatusNotificationRecord, StationEvent)
]


def redundant_indexes(table: str) -> list[tuple[str, str]]:
    """(index, the index leading with its columns) pairs: a non-unique plain index whose columns begin another."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    indexes = {
        name: (tuple(c["columns"]), c["unique"])
        for name, c in found.items()
        if (c["index"] or c["unique"]) and not c.get("primary_key") and c["columns"]
    }
    return sorted(
        (name, other)
        for name, (columns, unique) in indexes.items()
        for other, (longer, _) in indexes.items()
        if other != name and not unique and longer[: len(columns)] == columns
        and found[name].get("type", "btree") in ("btree", "idx") and not found[name].get("definition")
    )  # fmt: skip


@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_on_a_hot_table_is_led_by_another(table: str) -> None:
    assert redundant_indexes(table) == []
