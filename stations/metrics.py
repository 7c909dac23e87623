"""The stations' figures for ``/metrics`` (registered in ``StationsConfig.ready``): gauges read from the database
at scrape time.

Reading from the database (not per-process counters) keeps the figures right with several daphne processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .models import ChargingStation, Connector, MessageLog


class StationsCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        stations = GaugeMetricFamily("csms_stations", "Charging stations by connection state", labels=["state"])
        online = ChargingStation.objects.filter(is_online=True).count()
        total = ChargingStation.objects.count()
        stations.add_metric(["online"], online)
        stations.add_metric(["offline"], total - online)
        yield stations

        connectors = GaugeMetricFamily("csms_connectors", "Connectors by last reported status", labels=["status"])
        for by_status in Connector.objects.values("status").annotate(n=Count("pk")).order_by("status"):
            connectors.add_metric([by_status["status"] or "unknown"], by_status["n"])
        yield connectors

        since = timezone.now() - timedelta(minutes=5)
        errors = GaugeMetricFamily(
            "csms_ocpp_errors_5m", "CALLERRORs in the message log, last 5 minutes", labels=["code"]
        )
        for by_code in (
            MessageLog.objects.filter(created_at__gte=since, direction="out")
            .exclude(error_code="")
            .values("error_code")
            .annotate(n=Count("pk"))
            .order_by("error_code")
        ):
            errors.add_metric([by_code["error_code"]], by_code["n"])
        yield errors
