"""Charge detail records (CDRs): ended sessions of a period as CSV or JSON, produced row by row.

Rows come from :func:`selectors.cdr_rows` through ``.iterator(chunk_size=...)`` (a server-side cursor on
PostgreSQL), are formatted in blocks and never held all at once, so the memory used does not grow with the period.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from . import selectors
from .cost import money_text

COLUMNS = (
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
)
BLOCK_ROWS = 500  # rows per chunk handed to the HTTP response


def _iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def _energy(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    normalized = value.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def cdr_records(*, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
    """One dict per ended session (columns :data:`COLUMNS`): cost (with taxes, a decimal string in the currency's
    minor unit) and currency from the session's tariff version, empty without one; the signedMeterValue objects of
    the first and last signed energy readings (calibration-law billing), empty when the meter signs nothing."""
    rows = selectors.cdr_rows(since=since, until=until).iterator(chunk_size=settings.CSMS_CDR_EXPORT_CHUNK_ROWS)
    for row in rows:
        started, ended = row["started_at"], row["ended_at"]
        yield {
            "station": row["station__identity"],
            "transaction_id": row["transaction_id"],
            "evse_id": row["evse_id"],
            "connector_id": row["connector_id"],
            "id_token": row["id_token"],
            "started_at": _iso(started),
            "ended_at": _iso(ended),
            "duration_s": max(0, int((ended - started).total_seconds())) if started and ended else None,
            "energy_wh": _energy(row["energy_wh"]),
            "stopped_reason": row["stopped_reason"],
            "cost": money_text(row["cost"], row["currency"]),
            "currency": row["currency"] or None,
            "signed_meter_value_start": row["signed_meter_value_start"],
            "signed_meter_value_end": row["signed_meter_value_end"],
        }


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):  # a signedMeterValue: its JSON, as signed
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def csv_chunks(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for record in records:
        writer.writerow([_csv_cell(record[c]) for c in COLUMNS])
        count += 1
        if count % BLOCK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def json_chunks(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    parts: list[str] = ["["]
    first = True
    for record in records:
        parts.append(("" if first else ",") + json.dumps(record, default=_json_default, separators=(",", ":")))
        first = False
        if len(parts) >= BLOCK_ROWS:
            yield "".join(parts)
            parts = []
    parts.append("]")
    yield "".join(parts)
