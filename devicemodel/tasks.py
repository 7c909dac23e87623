"""Device model jobs (Celery): end report jobs that will never complete. Idempotent."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import services


@shared_task(name="devicemodel.reports_expire", ignore_result=True)
def reports_expire_task() -> int:
    """Periodic: failed requests and reports silent for CSMS_REPORT_TIMEOUT_S become failed / timed_out."""
    return services.reports_expire(timeout_s=settings.CSMS_REPORT_TIMEOUT_S)
