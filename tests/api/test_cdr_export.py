"""CDR export: ended sessions of a period, streamed as CSV/JSON in bounded memory."""

from __future__ import annotations

import csv
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from stations.services import station_register
from tests.api.helpers import call, client_for, streamed
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime(2026, 5, 4, tzinfo=UTC)
HEADER = [
    "station",
    "transaction_id",
    "evse_id",
    "connector_id",
    "id_token",
    "started_at",
    "ended_at",
    "duration_s",
    "energy_wh",
    "stopped_reason",
    "cost",
    "currency",
    "signed_meter_value_start",
    "signed_meter_value_end",
]


def make_sessions(n: int) -> None:
    station, _ = station_register(identity="CS-CDR")
    rows = []
    for i in range(n):
        started = DAY + timedelta(seconds=8 * i)
        rows.append(
            ChargingTransaction(
                station=station,
                transaction_id=f"TX-{i:05d}",
                evse_id=1 + i % 2,
                connector_id=1,
                id_token=f"CARD-{i % 50}",
                started_at=started,
                ended_at=started + timedelta(minutes=45),
                is_active=False,
                has_started_event=True,
                stopped_reason="EVDisconnected",
                energy_wh=Decimal("1000.5") + i,
            )
        )
    # outside the period: ended the day before, ended the next day, still active
    rows.append(
        ChargingTransaction(
            station=station,
            transaction_id="OLD",
            started_at=DAY - timedelta(hours=3),
            ended_at=DAY - timedelta(hours=1),
            is_active=False,
        )
    )
    rows.append(
        ChargingTransaction(
            station=station,
            transaction_id="NEXT",
            started_at=DAY + timedelta(hours=23),
            ended_at=DAY + timedelta(days=1, hours=1),
            is_active=False,
        )
    )
    rows.append(ChargingTransaction(station=station, transaction_id="LIVE", started_at=DAY + timedelta(hours=1)))
    ChargingTransaction.objects.bulk_create(rows, batch_size=2000)


def export_csv(client: Client, start: str, end: str) -> tuple[str | None, int, str | None, str | None, int]:
    """(header, data rows, row 1235, last row, tracemalloc peak) of one CSV export, consumed chunk by chunk."""
    tracemalloc.start()
    try:
        response = client.get(f"/api/v1/transactions/export.csv?start={start}&end={end}")
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        rows = 0
        header = sample = last = None
        pending = ""
        for chunk in streamed(response):
            pending += chunk.decode()
            lines = pending.split("\r\n")
            pending = lines.pop()
            for line in lines:
                if header is None:
                    header = line
                    continue
                rows += 1
                if rows == 1235:
                    sample = line
                last = line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pending == ""
    return header, rows, sample, last, peak


def test_csv_export_of_10000_sessions_in_bounded_memory(tokens):
    # Sessions every 8 s from 00:00, each 45 min long: the last of 10,000 ends on the same day (22:18:12 + 45 min).
    make_sessions(10_000)
    client = client_for(tokens["billing"])
    export_csv(client, "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")  # warm-up: imports, URL resolver, ...
    # the first 1,000 sessions end before 00:45:00 + 8,000 s = 02:58:20
    _, small_rows, _, _, small_peak = export_csv(client, "2026-05-04T00:00:00Z", "2026-05-04T02:58:20Z")
    header, rows, sample, last, peak = export_csv(client, "2026-05-04T00:00:00Z", "2026-05-05T00:00:00Z")
    print(f"CDR export: 1,000 rows peak {small_peak / 1e6:.1f} MB, 10,000 rows peak {peak / 1e6:.1f} MB")
    assert header == ",".join(HEADER)
    assert (small_rows, rows) == (1_000, 10_000)
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    # Streaming: ten times the rows, (almost) the same memory. Reading everything first would add ~10 MB here.
    assert peak - small_peak < 4 * 1024 * 1024, f"{small_peak / 1e6:.1f} MB -> {peak / 1e6:.1f} MB"
    # row 1235 = session 1234 (ordered by end): started 1234 * 8 s = 02:44:32 after midnight
    assert sample is not None and last is not None
    assert next(csv.reader([sample])) == [
        "CS-CDR",
        "TX-01234",
        "1",
        "1",
        "CARD-34",
        "2026-05-04T02:44:32Z",
        "2026-05-04T03:29:32Z",
        "2700",
        "2234.5",
        "EVDisconnected",
        "",
        "",
        "",
        "",
    ]
    assert next(csv.reader([last]))[1] == "TX-09999"


def test_json_export_permissions_and_validation(tokens):
    make_sessions(3)
    path = "/api/v1/transactions/export.json?start=2026-05-04T00:00:00Z&end=2026-05-05T00:00:00Z"
    assert call(None, "GET", path)[0] == 401
    assert call(tokens["none"], "GET", path)[0] == 403
    code, raw = call(tokens["billing"], "GET", path)
    assert code == 200
    records = json.loads(raw)
    assert [r["transaction_id"] for r in records] == ["TX-00000", "TX-00001", "TX-00002"]
    assert records[1] == {
        "station": "CS-CDR",
        "transaction_id": "TX-00001",
        "evse_id": 2,
        "connector_id": 1,
        "id_token": "CARD-1",
        "started_at": "2026-05-04T00:00:08Z",
        "ended_at": "2026-05-04T00:45:08Z",
        "duration_s": 2700,
        "energy_wh": 1001.5,
        "stopped_reason": "EVDisconnected",
        "cost": None,
        "currency": None,
        "signed_meter_value_start": None,
        "signed_meter_value_end": None,
    }
    next_year = path.replace("2026-05-04", "2027-05-04").replace("2026-05-05", "2027-05-05")
    code, raw = call(tokens["billing"], "GET", next_year)
    assert (code, json.loads(raw)) == (200, [])
    csv_path = "/api/v1/transactions/export.csv"
    assert call(tokens["billing"], "GET", csv_path) == (
        400,
        {"start": ["This field is required."], "end": ["This field is required."]},
    )
    code, body = call(tokens["billing"], "GET", csv_path + "?start=2026-05-05T00:00:00Z&end=2026-05-04T00:00:00Z")
    assert (code, body) == (400, {"end": ["must be after start"]})
    code, body = call(tokens["billing"], "GET", csv_path + "?start=soon&end=later")
    assert code == 400 and set(body) == {"start", "end"}
    # an Accept header asking for something else changes nothing
    response = client_for(tokens["billing"]).get(path, headers={"Accept": "text/html"})
    assert response.status_code == 200 and len(json.loads(b"".join(streamed(response)))) == 3


@pytest.mark.live
def test_export_streams_from_a_live_daphne_server(live_server_ws, tokens):
    """Under ASGI the export is an async iterator pulling blocks from the database in the request's thread."""
    import urllib.request

    make_sessions(1200)  # more than one block of rows
    request = urllib.request.Request(
        f"{live_server_ws.http_url}/api/v1/transactions/export.csv?start=2026-05-04T00:00:00Z&end=2026-05-05T00:00:00Z",
        headers={"Authorization": f"Token {tokens['billing']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers.get("Content-Length") is None  # streamed, not buffered
        lines = response.read().decode().split("\r\n")
    assert lines[0] == ",".join(HEADER) and lines[-1] == ""
    assert len(lines) == 1 + 1200 + 1
    assert lines[1200].startswith("CS-CDR,TX-01199,")
