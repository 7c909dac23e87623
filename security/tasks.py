"""Certificate jobs (Celery): issue an accepted CSR's certificate and send it, renewal before expiry, the CRL's
daily refresh. Idempotent, by id."""

from __future__ import annotations

from celery import shared_task

from . import certificates


@shared_task(name="security.certificate_issue", ignore_result=True, acks_late=True)
def certificate_issue_task(request_id: int) -> int | None:
    """Sign (or have the V2G PKI sign) an accepted CSR and send CertificateSigned; nothing when already done."""
    command = certificates.certificate_issue(request_id=request_id)
    return command.pk if command else None


@shared_task(name="security.certificates_renew_due", ignore_result=True)
def certificates_renew_due_task() -> int:
    """Periodic: TriggerMessage SignChargingStationCertificate for certificates expiring soon."""
    return len(certificates.certificates_renew_due())


@shared_task(name="security.crl_refresh", ignore_result=True)
def crl_refresh_task() -> str:
    """Periodic: rewrite the CRL before its nextUpdate passes (a TLS terminator refuses an expired CRL)."""
    return certificates.crl_refresh()
