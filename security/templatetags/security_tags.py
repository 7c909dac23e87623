"""``{% security_station_feed station %}``: the station page's security feed and alerts in one include, so the
stations app's view knows nothing of this app."""

from __future__ import annotations

from typing import Any

from django import template

from security import selectors

register = template.Library()

ALERTS_SHOWN = 10
FEED_ROWS = 20


def can_acknowledge(request: Any) -> bool:
    return bool(request and request.user.has_perm("security.change_securityevent"))


@register.inclusion_tag("security/_station_feed.html", takes_context=True)
def security_station_feed(context: template.Context, station: Any) -> dict[str, Any]:
    return {
        "station": station,
        "alerts": list(selectors.open_alerts(identity=station.identity)[:ALERTS_SHOWN]),
        "security_events": list(selectors.security_events(identity=station.identity)[:FEED_ROWS]),
        "station_events": list(selectors.station_events(identity=station.identity)[:FEED_ROWS]),
        "can_ack": can_acknowledge(context.get("request")),
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
    }
