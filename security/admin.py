"""Security events in the admin: read-only (stations report them, the CSMS records its own; nobody edits them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import CertificateRequest, InstalledCertificate, PasswordRotation, SecurityEvent, TrustedRootCertificate


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "identity", "source", "type", "critical", "count", "remote_addr", "acknowledged_at"]
    list_filter = ["critical", "source", "type"]
    search_fields = ["identity", "type", "tech_info", "remote_addr"]
    date_hierarchy = "timestamp"
    readonly_fields = [f.name for f in SecurityEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PasswordRotation)
class PasswordRotationAdmin(admin.ModelAdmin):
    """Password rotations: an audit trail (the new password is only ever stored hashed, and not shown)."""

    list_display = ["created_at", "station", "state", "reason", "command", "finished_at"]
    list_filter = ["state"]
    search_fields = ["station__identity"]
    exclude = ["password_hash"]
    readonly_fields = [f.name for f in PasswordRotation._meta.fields if f.name != "password_hash"]


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CertificateRequest)
class CertificateRequestAdmin(_ReadOnly):
    """Stations' CSRs and the certificates issued: an audit trail (revoking is an action of the API/station page)."""

    list_display = ["created_at", "station", "certificate_type", "state", "serial_number", "not_after", "revoked_at"]
    list_filter = ["certificate_type", "state"]
    search_fields = ["station__identity", "serial_number", "subject"]
    readonly_fields = [f.name for f in CertificateRequest._meta.fields]


@admin.register(InstalledCertificate)
class InstalledCertificateAdmin(_ReadOnly):
    """What stations hold, as they reported it: never edited here."""

    list_display = ["station", "certificate_type", "serial_number", "source", "subject", "not_after"]
    list_filter = ["certificate_type", "source"]
    search_fields = ["station__identity", "serial_number", "subject"]
    readonly_fields = [f.name for f in InstalledCertificate._meta.fields]


@admin.register(TrustedRootCertificate)
class TrustedRootCertificateAdmin(admin.ModelAdmin):
    """Plug & Charge roots the operator trusts (contract certificates in Authorize must chain to one)."""

    list_display = ["name", "certificate_type", "subject", "not_after"]
    readonly_fields = ["subject", "fingerprint_sha256", "not_after", "created_at"]

    def save_model(self, request: HttpRequest, obj: TrustedRootCertificate, form: Any, change: bool) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(obj.pem.encode())
        obj.subject = cert.subject.rfc4514_string()[:255]
        obj.fingerprint_sha256 = cert.fingerprint(hashes.SHA256()).hex()
        obj.not_after = cert.not_valid_after_utc
        super().save_model(request, obj, form, change)
