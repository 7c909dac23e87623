"""Filters shared by the API's FilterSets."""

from __future__ import annotations

from typing import Any

import django_filters

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def strict_boolean_filter(**kwargs: Any) -> django_filters.TypedChoiceFilter:
    """``true``/``false`` (or 1/0); anything else is a 400 with the field's error, not silently ignored."""
    return django_filters.TypedChoiceFilter(
        choices=[(v, v) for v in (*_TRUE, *_FALSE)], coerce=lambda v: v in _TRUE, **kwargs
    )
