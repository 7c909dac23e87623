"""Timestamps as OCPP sends and expects them."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone


def utc_now_iso() -> str:
    """Current UTC time in the RFC 3339 form OCPP expects (millisecond precision, ``Z``)."""
    return format_ocpp(timezone.now())


def format_ocpp(value: datetime) -> str:
    """``2026-01-01T10:00:00.123Z`` (isoformat, not strftime: it is on every Heartbeat's answer)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_ocpp(value: str) -> datetime:
    """Parse an OCPP timestamp; tolerant of what lenient stations send.

    # OCPP SPEC-SILENT: a timestamp without a UTC offset (invalid per RFC 3339, but common) is taken as UTC.
    """
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
