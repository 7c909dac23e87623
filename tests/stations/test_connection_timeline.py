"""The station page's connection history: the timeline's bars, offline gaps and refused handshakes over a window,
from one bounded query, drawn as SVG, and the paginated table beneath."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client

from stations import selectors
from stations.models import ChargingStation, Connection, ConnectionEvent

pytestmark = pytest.mark.django_db

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the window's end
H = timedelta(hours=1)


def conn(
    station: ChargingStation,
    opened: datetime,
    closed: datetime | None,
    *,
    outcome: str = ConnectionEvent.ACCEPTED,
    **fields: object,
) -> Connection:
    c = Connection.objects.create(station=station, identity=station.identity, outcome=outcome, **fields)
    # connected_at is auto_now_add: set the constructed history's times afterwards.
    Connection.objects.filter(pk=c.pk).update(connected_at=opened, disconnected_at=closed)
    c.refresh_from_db()
    return c


def history(station: ChargingStation) -> dict[str, Connection]:
    """A day with a clipped start, a refusal, a close recorded by nobody, a replacement and an open connection."""
    c = {
        "old": conn(station, T - 40 * H, T - 31 * H),  # ended before the window
        "old_refusal": conn(station, T - 25 * H, T - 25 * H, outcome=ConnectionEvent.REFUSED, reason="wrong password"),
        "c1": conn(
            station, T - 30 * H, T - 20 * H, close_code=1006, remote_addr="10.0.0.1:4000", tls=False, security_profile=1
        ),  # fmt: skip
        "refusal": conn(
            station,
            T - 19 * H,
            T - 19 * H,
            outcome=ConnectionEvent.REFUSED,
            reason="wrong password",
            remote_addr="10.0.0.9:5000",
        ),  # fmt: skip
        "c2": conn(
            station, T - 18 * H, T - 12 * H, close_code=1000, remote_addr="10.0.0.1:4001", tls=True, security_profile=2
        ),  # fmt: skip
        "stale": conn(station, T - 11 * H, None),  # its process died before recording the close
        "c3": conn(station, T - 10 * H, T - 6 * H + timedelta(seconds=2), close_code=4001),
        "c4": conn(station, T - 6 * H, None, remote_addr="10.0.0.1:4002", tls=True, security_profile=2),
    }
    Connection.objects.filter(pk=c["c3"].pk).update(replaced_by=c["c4"])
    c["c3"].refresh_from_db()
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, current_connection=c["c4"])
    return c


def test_timeline_bars_gaps_and_refusals_of_a_constructed_day(django_assert_num_queries):
    station = ChargingStation.objects.create(identity="TL-1")
    c = history(station)
    station.refresh_from_db()

    with django_assert_num_queries(1):
        timeline = selectors.station_connection_timeline(station=station, window=24 * H, until=T)

    assert (timeline.start, timeline.end, timeline.truncated) == (T - 24 * H, T, False)
    assert [(b.connection.pk, b.start, b.end, b.clipped_start, b.clipped_end) for b in timeline.bars] == [
        (c["c1"].pk, T - 24 * H, T - 20 * H, True, False),
        (c["c2"].pk, T - 18 * H, T - 12 * H, False, False),
        (c["stale"].pk, T - 11 * H, T - 10 * H, False, False),  # ends where the next connection begins
        (c["c3"].pk, T - 10 * H, T - 6 * H + timedelta(seconds=2), False, False),
        (c["c4"].pk, T - 6 * H, None, False, True),  # the current connection: open-ended
    ]
    # The replacing connection overlaps the one it replaced: no gap between them.
    assert [(g.start, g.end, g.duration, g.since_window_start, g.ongoing) for g in timeline.gaps] == [
        (T - 20 * H, T - 18 * H, 2 * H, False, False),
        (T - 12 * H, T - 11 * H, H, False, False),
    ]
    assert [r.pk for r in timeline.refusals] == [c["refusal"].pk]


def test_an_offline_station_ends_on_an_ongoing_gap_and_a_silent_one_is_offline_all_window():
    station = ChargingStation.objects.create(identity="TL-2")
    conn(station, T - 30 * H, T - 3 * H, close_code=1006)
    timeline = selectors.station_connection_timeline(station=station, window=24 * H, until=T)
    assert [(b.start, b.end, b.clipped_start) for b in timeline.bars] == [(T - 24 * H, T - 3 * H, True)]
    assert [(g.start, g.end, g.since_window_start, g.ongoing) for g in timeline.gaps] == [(T - 3 * H, T, False, True)]

    silent = ChargingStation.objects.create(identity="TL-3")
    conn(silent, T - 9 * 24 * H, T - 8 * 24 * H)  # outside the 7-day window
    week = selectors.station_connection_timeline(station=silent, window=7 * 24 * H, until=T)
    assert week.bars == []
    assert [(g.start, g.end, g.duration, g.since_window_start, g.ongoing) for g in week.gaps] == [
        (T - 7 * 24 * H, T, 7 * 24 * H, True, True)
    ]


def test_a_window_in_the_past_clips_a_connection_that_closed_after_it():
    station = ChargingStation.objects.create(identity="TL-4")
    c = conn(station, T - 5 * H, T + 2 * H)
    timeline = selectors.station_connection_timeline(station=station, window=24 * H, until=T)
    assert [(b.connection.pk, b.start, b.end, b.clipped_end) for b in timeline.bars] == [(c.pk, T - 5 * H, None, True)]
    assert [(g.start, g.end, g.since_window_start) for g in timeline.gaps] == [(T - 24 * H, T - 5 * H, True)]


def logged_in() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "", "pw"))
    return client


def test_station_page_draws_the_timeline_and_lists_the_connections():
    station = ChargingStation.objects.create(identity="TL-5")
    c = history(station)
    html = logged_in().get("/stations/TL-5/?window=24h&until=2026-03-01T12:00:00Z").content.decode()

    # The axis spans x 10..990 for 24 h: 980 / 24 = 40.83 per hour.
    assert (
        f'<rect class="tl-online" data-testid="timeline-bar" data-connection="{c["c1"].pk}" '
        'x="10.0" y="14" width="163.3" height="24">'
        "<title>online 2026-02-28 06:00:00 to 2026-02-28 16:00:00 (10 h 0 min); from 10.0.0.1:4000, ws, profile 1, "
        "close code 1006 (UTC)</title></rect>"
    ) in html
    assert (
        f'<rect class="tl-online" data-testid="timeline-bar" data-connection="{c["c2"].pk}" '
        'x="255.0" y="14" width="245.0" height="24">'
    ) in html
    assert (
        f'<rect class="tl-online tl-replaced" data-testid="timeline-bar" data-connection="{c["c3"].pk}" '
        'x="581.7" y="14" width="163.4" height="24">'
    ) in html
    assert (
        f'<rect class="tl-online tl-open" data-testid="timeline-bar" data-connection="{c["c4"].pk}" '
        'x="745.0" y="14" width="245.0" height="24">'
        "<title>online since 2026-03-01 06:00:00 (6 h 0 min, still open); from 10.0.0.1:4002, wss, profile 2 "
        "(UTC)</title></rect>"
    ) in html
    assert (
        '<rect class="tl-gap" data-testid="timeline-gap" x="173.3" y="14" width="81.7" height="24">'
        "<title>offline 2 h 0 min, 2026-02-28 16:00:00 to 2026-02-28 18:00:00 (UTC)</title></rect>"
        '<text class="tl-gap-label" x="173.3" dx="4" y="14" dy="16">2 h 0 min</text>'
    ) in html
    # A gap too narrow for its label keeps only its title.
    assert (
        '<rect class="tl-gap" data-testid="timeline-gap" x="500.0" y="14" width="40.8" height="24">'
        "<title>offline 1 h 0 min, 2026-03-01 00:00:00 to 2026-03-01 01:00:00 (UTC)</title></rect></g>"
    ) in html
    assert (
        f'<path class="tl-refused" data-testid="timeline-refusal" data-connection="{c["refusal"].pk}" '
        'd="M214.2,42 l-4,8 h8 z"><title>refused at 2026-02-28 17:00:00 from 10.0.0.9:5000: wrong password</title>'
    ) in html
    assert html.count('data-testid="timeline-bar"') == 5
    assert html.count('data-testid="timeline-gap"') == 2
    assert html.count('data-testid="timeline-refusal"') == 1
    assert "Connections of TL-5: 5 in the window, 2 offline periods, 1 refused handshake" in html
    # The table: every connection, newest first, with transport and duration.
    assert (
        "<tr><td>2026-02-28 18:00:00</td><td>accepted</td>\n      <td>10.0.0.1:4001</td><td>wss, profile 2</td>"
        "<td>2026-03-01 00:00:00</td><td>6 h 0 min</td><td>1000</td></tr>"
    ) in html
    assert html.count("<tr><td>20") == 8
    # The section re-fetches itself with the same window.
    assert 'hx-get="/stations/TL-5/connections/?window=24h&amp;until=2026-03-01T12:00:00Z&amp;conn_page=1"' in html


def test_the_connections_section_pages_its_table_and_switches_window():
    station = ChargingStation.objects.create(identity="TL-6")
    for i in range(21):
        conn(station, T - (i + 1) * H, T - (i + 1) * H, outcome=ConnectionEvent.REFUSED, reason=f"attempt {i}")
    client = logged_in()
    first = client.get("/stations/TL-6/connections/?window=7d&until=2026-03-01T12:00:00Z").content.decode()
    assert first.count("<td>refused: attempt") == 20
    assert "page 1 of 2" in first
    assert '<strong data-testid="timeline-window">7d</strong>' in first
    assert first.count('data-testid="timeline-refusal"') == 21
    second = client.get("/stations/TL-6/connections/?window=7d&until=2026-03-01T12:00:00Z&conn_page=2").content
    assert second.decode().count("<td>refused: attempt 20</td>") == 1
    assert second.decode().count("<td>refused: attempt") == 1
    # An unknown window falls back to 24 h.
    assert (
        '<strong data-testid="timeline-window">24h</strong>'
        in client.get("/stations/TL-6/connections/?window=1y").content.decode()
    )
