"""OCPP payloads in pages: a one-line preview for tables, the pretty-printed frame for detail views."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.template.defaultfilters import truncatechars

register = template.Library()

# Characters of a payload sent in a table cell; CSS cuts it to the cell's width (ellipsis) before that.
PREVIEW_CHARS = 160
# Longer payloads get a way to see all of them (a cell fits about this many characters at 1,400 px).
INLINE_CHARS = 60


@register.filter
def json_line(value: Any) -> str:
    """The payload as JSON on one line (what the table shows, and how long it is)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@register.filter
def json_preview(value: Any) -> str:
    """At most PREVIEW_CHARS of the one-line JSON: a 5 kB TransactionEvent stays one short line."""
    return truncatechars(json_line(value), PREVIEW_CHARS)


@register.filter
def json_pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


@register.filter
def is_long(value: Any) -> bool:
    return len(json_line(value)) > INLINE_CHARS


@register.filter
def frame_kind(message_type: int | None) -> str:
    """OCPP-J message type number as operators read it."""
    return {2: "CALL", 3: "RESULT", 4: "ERROR"}.get(message_type or 0, "—")
