"""Filters shared by the API's FilterSets."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import django_filters
from django.core.exceptions import ValidationError

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def strict_boolean_filter(**kwargs: Any) -> django_filters.TypedChoiceFilter:
    """``true``/``false`` (or 1/0); anything else is a 400 with the field's error, not silently ignored."""
    return django_filters.TypedChoiceFilter(
        choices=[(v, v) for v in (*_TRUE, *_FALSE)], coerce=lambda v: v in _TRUE, **kwargs
    )


class _UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    def to_python(self, value: Any) -> Any:
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return result.astimezone(UTC)  # PostgreSQL refuses offsets beyond +-15:59; any valid instant is fine
        except (OverflowError, ValueError) as exc:
            raise ValidationError("out of range", code="invalid") from exc


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO 8601 instant, converted to UTC (so unusual offsets and far years never reach the database as is)."""

    field_class = _UtcIsoDateTimeField
