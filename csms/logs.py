"""Structured logs: ``CSMS_LOG_FORMAT=json`` writes one JSON object per line, with the station identity, message id
and action of the station-path work the line belongs to (set by the protocol consumer, carried into the database
threads with the context).
"""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import Any

station_identity: contextvars.ContextVar[str] = contextvars.ContextVar("station_identity", default="")
message_id: contextvars.ContextVar[str] = contextvars.ContextVar("message_id", default="")
message_action: contextvars.ContextVar[str] = contextvars.ContextVar("message_action", default="")


def station_context(*, identity: str, unique_id: str = "", action: str = "") -> None:
    """Mark the current task's log lines as this station's (and this message's)."""
    station_identity.set(identity)
    message_id.set(unique_id)
    message_action.set(action)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, var in (("station", station_identity), ("message_id", message_id), ("action", message_action)):
            if value := var.get():
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
