"""The goal figures of issue 18 from a run's results: each beside the echo consumer of the same run, its goal and
whether the run met it. Shared by ``make bench`` (printed and stored as ``goals`` in the JSON) and
``python -m bench.readme_table`` (the README's performance table)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .report import NA, fmt

ECHO, PG, SQLITE = "echo", "csms-pg", "csms-sqlite"
DB_LABEL = {PG: "PostgreSQL + Redis", SQLITE: "embedded default (SQLite)"}


@dataclass(frozen=True)
class GoalFigure:
    figure: str
    echo: str  # the echo consumer in the same run
    csms: str
    vs_echo: str
    goal: str
    verdict: str  # "met", "not met", "n/a"; "(at N; goal at M)" when the run was smaller than the goal's size

    def cells(self) -> list[str]:
        return [self.figure, self.echo, self.csms, self.vs_echo, self.goal, self.verdict]

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


HEADER = ["figure", "echo (same run)", "CSMS", "vs echo", "goal", "verdict"]


def _get(d: Any, *keys: str | None) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pct(value: Any, base: Any) -> str:
    v, b = _num(value), _num(base)
    return f"{v / b * 100:.0f} %" if v is not None and b else NA


def _times(value: Any, base: Any) -> str:
    v, b = _num(value), _num(base)
    return f"{v / b:.1f}×" if v is not None and b else NA


def _verdict(ok: bool | None, measured_at: int | None = None, goal_at: int | None = None) -> str:
    if ok is None:
        return NA
    text = "met" if ok else "not met"
    if measured_at is not None and goal_at is not None and measured_at < goal_at:
        text += f" (at {measured_at:,}; goal at {goal_at:,})"
    return text


def _rate(figures: Any) -> str:
    """``5,178/s (p99 48 ms)`` of a closed-loop phase."""
    per_s = _get(figures, "per_s")
    if per_s is None:
        return NA
    if per_s == NA:
        return f"n/a ({_get(figures, 'note') or 'no data'})"
    p99 = _get(figures, "p99_ms")
    return f"{fmt(per_s, '/s')} (p99 {fmt(p99, ' ms')})"


def _open_loop_text(figures: Any) -> str:
    """``4,000 of 4,000 served (200/s offered), p99 3.8 ms, 0 errors`` of an open-loop phase."""
    if not isinstance(figures, dict) or figures.get("offered") is None:
        return NA
    errors = sum(figures.get("errors", {}).values())
    return (
        f"{figures['ok']:,} of {figures['offered']:,} served ({fmt(_num(figures['offered_per_s']), '/s')} offered), "
        f"p99 {fmt(_num(figures.get('p99_ms')), ' ms')}, {errors:,} errors"
    )


def _served(figures: dict[str, Any]) -> str:
    ok, offered = _num(figures.get("ok")), _num(figures.get("offered"))
    return f"{ok / offered * 100:.1f} % served" if ok is not None and offered else NA


def _open_loop_ok(figures: Any) -> bool | None:
    if not isinstance(figures, dict) or figures.get("offered") is None:
        return None
    p99 = _num(figures.get("p99_ms"))
    return bool(figures.get("kept_up")) and p99 is not None and p99 <= 100 and not figures.get("errors")


def _closed_level(results: dict[str, Any]) -> str | None:
    """The level of the closed-loop goals: 100 stations, or the smallest level of a smaller run."""
    levels = {lv for data in results.get("servers", {}).values() for lv in data.get("levels", {})}
    if "100" in levels:
        return "100"
    return min(levels, key=int) if levels else None


def goal_figures(results: dict[str, Any]) -> list[GoalFigure]:
    srv = results.get("servers", {})
    plan = results.get("plan", {})
    rows: list[GoalFigure] = []
    level = _closed_level(results)
    lv = int(level) if level else None

    # (a) persisted TransactionEvents (each with its meter values), closed loop.
    for name, target in ((PG, 0.5), (SQLITE, 0.25)):
        echo_te, te = _get(srv, ECHO, "levels", level, "te"), _get(srv, name, "levels", level, "te")
        if te is None or level is None:
            continue
        v, b = _num(te.get("per_s")), _num(_get(echo_te, "per_s"))
        rows.append(
            GoalFigure(
                f"TransactionEvent persisted/s, {lv:,} stations closed loop, {DB_LABEL[name]}",
                _rate(echo_te),
                _rate(te),
                _pct(te.get("per_s"), _get(echo_te, "per_s")),
                f"≥ {target * 100:.0f} % of echo",
                _verdict(None if v is None or not b else v / b >= target, lv, 100),
            )
        )

    # (b) open loop: every station a TransactionEvent every interval.
    for name in (PG, SQLITE):
        figures = _get(srv, name, "open_loop")
        if figures is None:
            continue
        stations = _get(plan, "open_loop", name) or figures.get("stations")
        interval = figures.get("interval_s") or plan.get("open_loop_interval_s")
        rows.append(
            GoalFigure(
                f"{stations:,} stations, a TransactionEvent every {interval:g} s each, {DB_LABEL[name]}",
                _open_loop_text(_get(srv, ECHO, "open_loop")),
                _open_loop_text(figures),
                _served(figures),
                "served = offered, p99 ≤ 100 ms, 0 errors",
                _verdict(_open_loop_ok(figures), stations, 1000),
            )
        )

    # (c) CPU per persisted TransactionEvent, closed loop.
    for name in (PG, SQLITE):
        te = _get(srv, name, "levels", level, "te")
        cpu = _get(te, "server_cpu_ms_per_event")
        if cpu is None:
            continue
        beside = _get(te, "postgres_cpu_ms_per_event")
        text = fmt(_num(cpu), " ms") + (f" (PostgreSQL beside it: {fmt(_num(beside), ' ms')})" if beside else "")
        echo_cpu = _get(srv, ECHO, "levels", level, "te", "server_cpu_ms_per_event")
        if name == PG:
            goal, verdict = "≤ 0.5 ms (PostgreSQL's not counted)", _verdict(float(cpu) <= 0.5)
        else:
            goal, verdict = "none (SQLite's work is inside daphne)", "—"
        rows.append(
            GoalFigure(
                f"CPU of the CSMS's daphne per persisted TransactionEvent, {lv:,} stations closed loop, "
                f"{DB_LABEL[name]}",
                fmt(_num(echo_cpu), " ms"),
                text,
                _times(cpu, echo_cpu),
                goal,
                verdict,
            )
        )

    # (d) heartbeats, closed loop.
    for name in (SQLITE, PG):
        echo_hb, hb = _get(srv, ECHO, "levels", level, "heartbeat"), _get(srv, name, "levels", level, "heartbeat")
        if hb is None:
            continue
        v, b = _num(hb.get("per_s")), _num(_get(echo_hb, "per_s"))
        rows.append(
            GoalFigure(
                f"heartbeats/s, {lv:,} stations closed loop, {DB_LABEL[name]}",
                _rate(echo_hb),
                _rate(hb),
                _pct(v, b),
                "≥ 90 % of echo",
                _verdict(None if v is None or not b else v / b >= 0.9, lv, 100),
            )
        )

    # (e) command round trip across two processes.
    crt = results.get("command_round_trip")
    if isinstance(crt, dict) and crt.get("status") != NA:
        p50 = _num(crt.get("p50_ms"))
        rows.append(
            GoalFigure(
                "command round trip, API on one daphne, station on another",
                "",
                f"p50 {fmt(p50, ' ms')}, p99 {fmt(_num(crt.get('p99_ms')), ' ms')}",
                "",
                "p50 ≤ 20 ms",
                _verdict(None if p50 is None else p50 <= 20),
            )
        )

    # (f) many stations per process at a realistic rate.
    realistic = _get(srv, PG, "idle", "realistic")
    if isinstance(realistic, dict):
        held = _get(srv, PG, "idle", "held") or 0
        echo_real = _get(srv, ECHO, "idle", "realistic")
        iv = realistic.get("intervals_s", {})
        p99 = _num(realistic.get("p99_ms"))
        served = realistic.get("kept_up")
        rows.append(
            GoalFigure(
                f"{held:,} stations on one process, a TransactionEvent every {iv.get('te', 0):g} s and a "
                f"heartbeat every {iv.get('heartbeat', 0):g} s each, {DB_LABEL[PG]}: p99",
                _open_loop_text(echo_real),
                _open_loop_text(realistic),
                _times(p99, _get(echo_real, "p99_ms")),
                "p99 ≤ 50 ms (and served = offered)",
                _verdict(None if p99 is None else p99 <= 50 and bool(served), held, 10000),
            )
        )
        kb = _num(realistic.get("kb_per_station"))
        rows.append(
            GoalFigure(
                f"RSS per station, those {held:,} stations under that traffic, {DB_LABEL[PG]}",
                fmt(_num(_get(echo_real, "kb_per_station")), " kB"),
                fmt(kb, " kB"),
                _times(kb, _get(echo_real, "kb_per_station")),
                "≤ 60 kB",
                _verdict(None if kb is None else kb <= 60, held, 10000),
            )
        )
    return rows


def markdown(rows: list[GoalFigure]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(HEADER), line(["---"] * len(HEADER)), *(line(r.cells()) for r in rows)])
