"""Admin of firmware images and rollouts (imported by ``FirmwareConfig.ready``). Images are uploaded here with the
same checks as the API (signature verified, checksums computed); rollouts, updates, statuses and publications are
audit records, read-only (rollouts are started and cancelled from their page or the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

from . import images
from .models import (
    FirmwareImage,
    FirmwarePublication,
    FirmwareRollout,
    FirmwareStatusReport,
    FirmwareUpdate,
    RolloutStation,
)


class FirmwareImageForm(forms.ModelForm):
    class Meta:
        model = FirmwareImage
        fields = ["version", "file", "signing_certificate", "signature"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is None or self.errors:
            return data
        cert, signature = (data.get("signing_certificate") or "").strip(), (data.get("signature") or "").strip()
        if bool(cert) != bool(signature):
            raise forms.ValidationError(
                "a signature needs its signing certificate, and a signing certificate a signature"
            )
        md5_hex, sha256, size = images.file_digests(upload)
        if signature:
            try:
                images.signature_check(certificate_pem=cert, signature_b64=signature, sha256_digest=sha256)
            except images.FirmwareImageError as exc:
                raise forms.ValidationError(str(exc)) from exc
        self.instance.md5_hex, self.instance.sha256_hex, self.instance.size_bytes = md5_hex, sha256.hex(), size
        return data


@admin.register(FirmwareImage)
class FirmwareImageAdmin(admin.ModelAdmin):
    form = FirmwareImageForm
    list_display = ("version", "size_bytes", "md5_hex", "created_at")
    readonly_fields = ("size_bytes", "md5_hex", "sha256_hex", "uploaded_by", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # an image is never changed once stored

    def save_model(self, request: HttpRequest, obj: FirmwareImage, form: Any, change: bool) -> None:
        obj.uploaded_by = request.user if request.user.is_authenticated else None
        super().save_model(request, obj, form, change)


class RolloutStationInline(ReadOnlyInline, admin.TabularInline):
    model = RolloutStation
    fields = ("station", "wave", "state", "attempts", "detail", "sent_at", "state_at", "version_confirmed_at")
    readonly_fields = fields


@admin.register(FirmwareRollout)
class FirmwareRolloutAdmin(ReadOnlyAdmin):
    list_display = ("pk", "firmware", "state", "current_wave", "wave_size", "max_concurrent", "created_at")
    list_filter = ("state",)
    inlines = [RolloutStationInline]


@admin.register(FirmwareUpdate)
class FirmwareUpdateAdmin(ReadOnlyAdmin):
    list_display = ("station", "request_id", "answer_status", "status", "status_at", "created_at")
    search_fields = ("station__identity",)


@admin.register(FirmwareStatusReport)
class FirmwareStatusReportAdmin(ReadOnlyAdmin):
    list_display = ("station", "request_id", "status", "outcome", "received_at")
    list_filter = ("status",)
    search_fields = ("station__identity",)


@admin.register(FirmwarePublication)
class FirmwarePublicationAdmin(ReadOnlyAdmin):
    list_display = ("station", "firmware", "request_id", "answer_status", "status", "unpublish_status", "created_at")
    search_fields = ("station__identity",)
