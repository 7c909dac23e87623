"""Security events: what stations report (SecurityEventNotification) and what the CSMS itself records about them
(refused handshakes, aggregated per identity, address and window)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stations.models import ChargingStation


class SecurityEventSource(models.TextChoices):
    STATION = "station", "reported by the station"
    CSMS = "csms", "recorded by the CSMS"


class CsmsSecurityEventType(models.TextChoices):
    """Types of the events the CSMS records itself (the station-reported ones come from the OCPP security events list,
    any string up to 50 characters)."""

    # OCPP SPEC-SILENT: the security events list names what a station reports; these name the CSMS's own records.
    HANDSHAKE_REFUSED = "CsmsRefusedHandshake", "handshake refused: wrong or missing password"
    HANDSHAKE_THROTTLED = "CsmsThrottledHandshake", "handshake refused unchecked: too many failures"
    HANDSHAKE_INSECURE = "CsmsInsecureHandshake", "handshake refused: connection weaker than the security profile"


class SecurityEvent(models.Model):
    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="security_events"
    )
    identity = models.CharField(max_length=48, help_text="The station's identity, as presented.")
    source = models.CharField(max_length=10, choices=SecurityEventSource.choices, default=SecurityEventSource.STATION)
    type = models.CharField(max_length=50, help_text="From the OCPP security events list (or a CSMS type).")
    timestamp = models.DateTimeField(help_text="As reported by the station; for CSMS records the window's start.")
    tech_info = models.CharField(max_length=255, blank=True)
    critical = models.BooleanField(default=False, help_text="Its type is in CSMS_CRITICAL_SECURITY_EVENTS.")
    # CSMS records aggregate attempts: one row per (identity, address, type, window) with a count.
    count = models.PositiveIntegerField(default=1)
    remote_addr = models.CharField(max_length=64, blank=True)
    last_at = models.DateTimeField(null=True, blank=True, help_text="Latest attempt counted (CSMS records).")
    received_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["station", "-timestamp"]),
            models.Index(
                fields=["-timestamp"],
                name="security_event_open_alert",
                condition=Q(critical=True, acknowledged_at__isnull=True),
            ),
        ]
        constraints = [
            # A station retrying the same notification (with a new message id) adds no second row.
            models.UniqueConstraint(
                fields=["station", "type", "timestamp"],
                condition=Q(source="station"),
                name="uniq_station_security_event",
            ),
            models.UniqueConstraint(
                fields=["identity", "remote_addr", "type", "timestamp"],
                condition=Q(source="csms"),
                name="uniq_csms_security_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identity} {self.type} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


# --- Certificates (security/ca.py, security/certificates.py) --------------------------------------------------


class CertificateSigningUse(models.TextChoices):
    CHARGING_STATION = "ChargingStationCertificate"
    V2G = "V2GCertificate"


class CertificateRequestState(models.TextChoices):
    REJECTED = "rejected", "CSR rejected by the CSMS"
    ACCEPTED = "accepted", "CSR accepted, certificate to be sent"
    SENT = "sent", "CertificateSigned sent"
    INSTALLED = "installed", "the station accepted the certificate"
    STATION_REJECTED = "station_rejected", "the station rejected the certificate"
    FAILED = "failed", "CertificateSigned not delivered (offline, error, timeout) or the PKI failed"


class CertificateRequest(models.Model):
    """A station's SignCertificate (its CSR) and what came of it: the certificate the CSMS's CA (or the V2G PKI)
    issued, the CertificateSigned command, the station's answer, renewal and revocation."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="certificate_requests")
    certificate_type = models.CharField(
        max_length=30, choices=CertificateSigningUse.choices, default=CertificateSigningUse.CHARGING_STATION
    )
    csr = models.TextField(help_text="The PEM CSR as sent.")
    state = models.CharField(max_length=20, choices=CertificateRequestState.choices)
    reason = models.CharField(max_length=255, blank=True, help_text="Why the CSR was rejected or delivery failed.")
    certificate_pem = models.TextField(blank=True, help_text="The issued certificate chain (PEM).")
    serial_number = models.CharField(max_length=40, blank=True, help_text="Hex, lower case, no leading zeros.")
    subject = models.CharField(max_length=255, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    command = models.ForeignKey("stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    station_status = models.CharField(max_length=20, blank=True, help_text="The CertificateSigned answer's status.")
    renewal_requested_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-created_at"]),
            models.Index(fields=["not_after"], name="cert_request_expiry", condition=Q(state="installed")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["serial_number"], condition=~Q(serial_number=""), name="uniq_cert_request_serial"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.certificate_type} for station {self.station_id}: {self.state}"


class InstalledCertificateUse(models.TextChoices):
    V2G_ROOT = "V2GRootCertificate"
    MO_ROOT = "MORootCertificate"
    CSMS_ROOT = "CSMSRootCertificate"
    V2G_CHAIN = "V2GCertificateChain"
    MANUFACTURER_ROOT = "ManufacturerRootCertificate"


class InstalledCertificateSource(models.TextChoices):
    REPORTED = "reported", "GetInstalledCertificateIds"
    INSTALLED = "installed", "InstallCertificate accepted"


class InstalledCertificate(models.Model):
    """One certificate a station holds, by its hash data (what GetInstalledCertificateIds reports and
    DeleteCertificate names). A V2GCertificateChain's child certificates point at their chain's entry."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="installed_certificates")
    certificate_type = models.CharField(max_length=30, choices=InstalledCertificateUse.choices)
    hash_algorithm = models.CharField(max_length=10)
    issuer_name_hash = models.CharField(max_length=128)
    issuer_key_hash = models.CharField(max_length=128)
    serial_number = models.CharField(max_length=40)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    source = models.CharField(max_length=10, choices=InstalledCertificateSource.choices)
    subject = models.CharField(max_length=255, blank=True, help_text="Known when the CSMS installed it.")
    not_after = models.DateTimeField(null=True, blank=True, help_text="Known when the CSMS installed it.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["certificate_type", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "station",
                    "certificate_type",
                    "hash_algorithm",
                    "issuer_name_hash",
                    "issuer_key_hash",
                    "serial_number",
                ],
                name="uniq_installed_certificate",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.certificate_type} {self.serial_number} on station {self.station_id}"

    def hash_data(self) -> dict[str, str]:
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }


class TrustedRootUse(models.TextChoices):
    V2G_ROOT = "V2GRootCertificate"
    MO_ROOT = "MORootCertificate"


class TrustedRootCertificate(models.Model):
    """A Plug & Charge root the operator trusts (uploaded): contract certificates (Authorize) must chain to one."""

    certificate_type = models.CharField(max_length=30, choices=TrustedRootUse.choices)
    name = models.CharField(max_length=100, blank=True)
    pem = models.TextField()
    subject = models.CharField(max_length=255, blank=True, editable=False)
    fingerprint_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    not_after = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["certificate_type", "id"]

    def __str__(self) -> str:
        return self.name or self.subject

    def clean(self) -> None:
        from cryptography import x509
        from django.core.exceptions import ValidationError

        try:
            x509.load_pem_x509_certificate(self.pem.encode())
        except ValueError as exc:
            raise ValidationError({"pem": "not a PEM-encoded X.509 certificate"}) from exc


class PasswordRotationState(models.TextChoices):
    SENT = "sent", "sent: waiting for the station's answer"
    ACCEPTED = "accepted", "accepted: the new password is the station's"
    COMPLETED = "completed", "completed: the station connected with the new password"
    REJECTED = "rejected", "rejected: the old password stays"
    FAILED = "failed", "failed: no answer (the old password stays; the new one is accepted if the station uses it)"


class PasswordRotation(models.Model):
    """A station password rotation (security/rotation.py): the new password, hashed only, sent with SetVariables
    SecurityCtrlr.BasicAuthPassword; it becomes the station's password when the station accepts it."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="password_rotations")
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="password_rotation"
    )
    password_hash = models.CharField(max_length=255, editable=False)
    state = models.CharField(max_length=10, choices=PasswordRotationState.choices, default=PasswordRotationState.SENT)
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "state"])]

    def __str__(self) -> str:
        return f"{self.station_id} password rotation {self.state}"
