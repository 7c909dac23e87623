"""Site pages: the list of sites and a site's page (capacity, members, live load against capacity as a chart,
allocation per EVSE, the allocation log). The load section re-renders itself every few seconds (htmx polling)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from . import sites
from .models import AllocationRound, Site

WIDTH, HEIGHT = 800, 240
LEFT, RIGHT, TOP, BOTTOM = 50, 20, 20, 36
POLL_S = 5


@dataclass(slots=True)
class LoadChart:
    """Coordinates of the site's load over its latest rounds: allocated and measured (highest phase) against the
    capacity."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    top: int = TOP
    bottom_y: int = HEIGHT - BOTTOM
    capacity_a: float = 0.0
    capacity_y: float = 0.0
    allocated: str = ""
    measured: str = ""
    points: list[dict[str, Any]] = field(default_factory=list)
    y_ticks: list[dict[str, float]] = field(default_factory=list)
    start: Any = None
    end: Any = None

    @property
    def empty(self) -> bool:
        return not self.points


def load_chart(rounds: list[AllocationRound], capacity_a: float) -> LoadChart:
    chart = LoadChart(capacity_a=capacity_a)
    if not rounds:
        return chart
    top_a = max([capacity_a, *(max(r.allocated_a or [0]) for r in rounds), *(max(r.measured_a or [0]) for r in rounds)])
    top_a = top_a * 1.1 or 1.0
    t0, t1 = rounds[0].created_at, rounds[-1].created_at
    span = (t1 - t0).total_seconds() or 1.0
    plot_w, plot_h = chart.right_x - chart.left, chart.bottom_y - chart.top

    def y(value: float) -> float:
        return round(chart.bottom_y - value / top_a * plot_h, 1)

    allocated, measured = [], []
    for r in rounds:
        offset = (r.created_at - t0).total_seconds() / span if len(rounds) > 1 else 0.0
        x = round(chart.left + offset * plot_w, 1)
        a, m = max(r.allocated_a or [0]), max(r.measured_a or [0])
        allocated.append(f"{x},{y(a)}")
        measured.append(f"{x},{y(m)}")
        chart.points.append({"x": x, "y": y(a), "allocated": a, "measured": m, "at": r.created_at, "reason": r.reason})
    chart.allocated, chart.measured = " ".join(allocated), " ".join(measured)
    chart.capacity_y = y(capacity_a)
    chart.y_ticks = [{"y": y(top_a / 1.1 * i / 4), "value": round(top_a / 1.1 * i / 4, 1)} for i in range(5)]
    chart.start, chart.end = t0, t1
    return chart


def _load_context(site: Site) -> dict[str, Any]:
    load = sites.site_load(site)
    capacity = max(load["capacity_a"]) if load["capacity_a"] else 0.0
    for evse in load["evses"]:
        evse["share_pct"] = min(100.0, float(evse["limit_a"]) / capacity * 100) if capacity else 0.0
    phases = [
        {"name": f"L{i + 1}", "capacity": c, "allocated": a, "measured": m,
         "pct": min(100.0, a / c * 100) if c else 0.0}
        for i, (c, a, m) in enumerate(zip(load["capacity_a"], load["allocated_a"], load["measured_a"], strict=True))
    ]  # fmt: skip
    return {
        "site": site,
        "load": load,
        "phases": phases,
        "chart": load_chart(sites.site_load_history(site), capacity),
        "poll_s": POLL_S,
    }


@login_required
@permission_required("smartcharging.view_site", raise_exception=True)
def site_list(request: HttpRequest) -> HttpResponse:
    rows = list(Site.objects.prefetch_related("members__station").order_by("name"))
    return render(request, "smartcharging/site_list.html", {"sites": rows})


@login_required
@permission_required("smartcharging.view_site", raise_exception=True)
def site_detail(request: HttpRequest, pk: int) -> HttpResponse:
    site = get_object_or_404(Site, pk=pk)
    context = _load_context(site)
    context["members"] = list(site.members.select_related("station").order_by("station__identity"))
    context["rounds"] = list(site.rounds.prefetch_related("entries__station")[:20])
    context["default_min"] = sites.site_min_a(site)
    return render(request, "smartcharging/site_detail.html", context)


@login_required
@permission_required("smartcharging.view_site", raise_exception=True)
def site_load(request: HttpRequest, pk: int) -> HttpResponse:
    """The live load section alone (htmx polling)."""
    return render(request, "smartcharging/site_load.html", _load_context(get_object_or_404(Site, pk=pk)))
