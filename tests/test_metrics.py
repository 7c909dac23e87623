"""``/metrics`` moves with the traffic (in process and in multiprocess mode on a live server), and the deploy
files (Grafana dashboard, Prometheus alerts) use only metric names that ``/metrics`` exposes."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from tests.conftest import ROOT
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import exchange

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$", re.M)
METRIC_NAME = re.compile(r"\b(csms_[a-z0-9_]+)\b")


def samples(text: str) -> dict[str, float]:
    return {name + (labels or ""): float(value) for name, labels, value in SAMPLE.findall(text)}


def scrape() -> dict[str, float]:
    return samples(Client().get("/metrics").content.decode())


def test_counters_and_histograms_move_with_station_traffic(asgi_server, station_factory):
    station_factory("MET-1")
    before = scrape()
    frames = [
        json.dumps([2, "h1", "Heartbeat", {}]),
        json.dumps([2, "h2", "Heartbeat", {}]),
        json.dumps([2, "bad", "Heartbeat", {"unexpected": 1}]),
        json.dumps([2, "x1", "MakeCoffee", {}]),
    ]
    replies = exchange(asgi_server, "MET-1", frames)
    assert [r[0] for r in replies] == [3, 3, 4, 4]
    after = scrape()

    def moved(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    # Boot + 2 heartbeats + the helper's closing heartbeat answered; 2 errors, one of an unknown action.
    assert moved('csms_ocpp_messages_total{action="Heartbeat",outcome="result"}') == 3
    assert moved('csms_ocpp_messages_total{action="BootNotification",outcome="result"}') == 1
    assert moved('csms_ocpp_messages_total{action="Heartbeat",outcome="error"}') == 1
    assert moved('csms_ocpp_messages_total{action="other",outcome="error"}') == 1
    assert moved('csms_ocpp_call_errors_total{code="NotImplemented"}') == 1
    assert moved('csms_ocpp_handler_seconds_count{action="Heartbeat"}') == 3
    assert moved('csms_ocpp_handler_seconds_bucket{action="Heartbeat",le="+Inf"}') == 3
    assert not any("MET-1" in key for key in after), "no station identity in any label"


def test_multiprocess_mode_serves_the_sum_from_a_live_server(csms_server, station_factory, tmp_path):
    station_factory("MET-2")
    server = csms_server("metrics-multiproc", PROMETHEUS_MULTIPROC_DIR=str(tmp_path))

    async def traffic() -> None:
        async with RawStation.connect(server.ws_url, "MET-2") as st:
            await st.boot()
            for _ in range(5):
                assert (await st.call("Heartbeat", {}))[0] == 3

    run(traffic())
    with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=10) as response:
        scraped = samples(response.read().decode())
    assert scraped['csms_ocpp_messages_total{action="Heartbeat",outcome="result"}'] == 5
    assert scraped['csms_ocpp_handler_seconds_count{action="BootNotification"}'] == 1
    assert any(path.name.startswith("counter_") for path in tmp_path.iterdir()), "per-process files written"


def exposed_names(asgi_text: str) -> set[str]:
    names = set()
    for name, _labels, _value in SAMPLE.findall(asgi_text):
        names.add(name)
        for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
            if name.endswith(suffix):
                names.add(name[: -len(suffix)])
    # A labelled metric no process has used yet is only declared: its series names follow from its type.
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ()}
    for declared, kind in re.findall(r"^# TYPE (\S+) (\w+)", asgi_text, re.M):
        names.add(declared)
        names.update(declared + suffix for suffix in suffixes.get(kind, ()))
    return names


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "expr" and isinstance(v, str)] + [
            e for v in node.values() for e in _exprs(v)
        ]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


@pytest.mark.django_db
def test_grafana_dashboard_and_alert_rules_use_only_exposed_metrics():
    exposed = exposed_names(Client().get("/metrics").content.decode())
    deploy = Path(ROOT) / "deploy"
    dashboard = json.loads((deploy / "grafana" / "csms-dashboard.json").read_text())
    alerts = yaml.safe_load((deploy / "prometheus" / "alerts.yml").read_text())
    scrape_config = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    assert scrape_config["scrape_configs"][0]["metrics_path"] == "/metrics"
    assert "alerts.yml" in scrape_config["rule_files"]
    exprs = _exprs(dashboard["panels"]) + _exprs(alerts["groups"])
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert used, "no metric named"
    assert sorted(used - exposed) == []
