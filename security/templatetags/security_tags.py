"""``{% security_alerts %}`` (overview) and ``{% security_station_feed station %}`` (station page): one include each,
so the pages of other apps gain the feed without their views knowing this app."""

from __future__ import annotations

from typing import Any

from django import template

from security import selectors

register = template.Library()

ALERTS_SHOWN = 10
FEED_ROWS = 20


def _can_ack(context: template.Context) -> bool:
    request = context.get("request")
    return bool(request and request.user.has_perm("security.change_securityevent"))


@register.inclusion_tag("security/_alerts.html", takes_context=True)
def security_alerts(context: template.Context) -> dict[str, Any]:
    # One query: a row more than shown tells whether there are more.
    alerts = list(selectors.open_alerts()[: ALERTS_SHOWN + 1])
    return {
        "alerts": alerts[:ALERTS_SHOWN],
        "more": len(alerts) > ALERTS_SHOWN,
        "can_ack": _can_ack(context),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("security/_station_feed.html", takes_context=True)
def security_station_feed(context: template.Context, station: Any) -> dict[str, Any]:
    return {
        "station": station,
        "alerts": list(selectors.open_alerts(identity=station.identity)[:ALERTS_SHOWN]),
        "security_events": list(selectors.security_events(identity=station.identity)[:FEED_ROWS]),
        "station_events": list(selectors.station_events(identity=station.identity)[:FEED_ROWS]),
        "can_ack": _can_ack(context),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }
