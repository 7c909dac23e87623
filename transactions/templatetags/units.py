"""Unit filters for the dashboard: base units (Wh, W) shown as kWh / kW."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()


def _thousandth(value: Any, places: int) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(value) / 1000:,.{places}f}"
    except (InvalidOperation, TypeError, ValueError):
        return "—"


@register.filter
def kwh(value: Any, places: int = 2) -> str:
    """Wh -> "12.35" kWh."""
    return _thousandth(value, places)


@register.filter
def kw(value: Any, places: int = 1) -> str:
    """W -> "7.4" kW."""
    return _thousandth(value, places)


@register.filter
def money(value: Any, currency: str = "") -> str:
    """A stored amount in its currency's minor unit with the code: "8.15 EUR"."""
    from transactions.cost import money_text

    if value is None or value == "":
        return "—"
    return f"{money_text(Decimal(value), currency or '')} {currency}".strip()
