"""``/metrics`` in the Prometheus text format, from the collectors the apps register in their ``ready()``.

Each app describes its own domain (``stations.metrics``, ...); this module only serves them.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

_collectors: list[Collector] = []


def collector_register(collector: Collector) -> None:
    """Add an app's collector to ``/metrics`` (idempotent per collector class)."""
    if not any(type(found) is type(collector) for found in _collectors):
        _collectors.append(collector)


def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    for collector in _collectors:
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
