"""Device model jobs (Celery): end report jobs that will never complete; the nightly base report. Idempotent."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from csms import jobs

from . import services


@shared_task(name="devicemodel.reports_expire", ignore_result=True)
def reports_expire_task() -> int:
    """Periodic: failed requests and reports silent for CSMS_REPORT_TIMEOUT_S become failed / timed_out."""
    return services.reports_expire(timeout_s=settings.CSMS_REPORT_TIMEOUT_S)


def _nightly_every_s() -> float:
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["devicemodel-nightly-base-report"]
    return float(entry["schedule"])


@shared_task(name="devicemodel.nightly_base_report", ignore_result=True)
@jobs.once_per_slot("devicemodel.nightly_base_report", every_s=_nightly_every_s)
def nightly_base_report_task() -> int:
    """Periodic (every 10 min): CSMS_NIGHTLY_BASE_REPORT (off when empty) to the online stations not yet asked
    tonight (``services.nightly_base_reports_send``)."""
    if not settings.CSMS_NIGHTLY_BASE_REPORT:
        return 0
    return services.nightly_base_reports_send(
        kind=settings.CSMS_NIGHTLY_BASE_REPORT, hour_utc=settings.CSMS_NIGHTLY_BASE_REPORT_HOUR_UTC
    )
