"""Firmware images and rollouts (block L), log requests and the stations' file server (block N logs)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# Files and log requests ---------------------------------------------------------------------------------------------


class FileTransferProtocol(models.TextChoices):
    HTTP = "http", "HTTP(S)"
    FTP = "ftp", "FTP"


class StationFileTransferChoice(models.TextChoices):
    AUTO = "auto", "Automatic (device model)"
    HTTP = "http", "HTTP(S)"
    FTP = "ftp", "FTP"


class StationFileTransfer(models.Model):
    """Per station: how it uploads files to the CSMS (operator's choice; ``auto`` follows its device model's
    ``OCPPCommCtrlr.FileTransferProtocols``), and the last LogStatusNotification it sent, whatever its requestId."""

    station = models.OneToOneField("stations.ChargingStation", on_delete=models.CASCADE, related_name="file_transfer")
    protocol = models.CharField(
        max_length=4, choices=StationFileTransferChoice.choices, default=StationFileTransferChoice.AUTO
    )
    last_log_status = models.CharField(max_length=24, blank=True)
    last_log_request_id = models.IntegerField(null=True, blank=True)
    last_log_status_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"file transfer of {self.station_id}: {self.protocol}"


class UploadSlot(models.Model):
    """One station upload: a random token (the HTTP URL's path, the FTP user and password), a size limit, an
    expiry, single use. The file, once received, is in Django storage (``file``)."""

    token = models.CharField(max_length=64, unique=True)
    protocol = models.CharField(max_length=4, choices=FileTransferProtocol.choices, default=FileTransferProtocol.HTTP)
    max_bytes = models.BigIntegerField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)
    file = models.FileField(upload_to="uploads/%Y/%m/", max_length=300, blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="The name the station gave the file.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    received_via = models.CharField(max_length=12, blank=True, help_text="http-put, http-post or ftp")

    def __str__(self) -> str:
        return f"upload slot {self.pk} ({'used' if self.used_at else 'open'})"


class LogType(models.TextChoices):
    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"


class LogRequestState(models.TextChoices):
    REQUESTED = "requested"  # sent, no answer yet
    ACCEPTED = "accepted"  # GetLog Accepted (or AcceptedCanceled: it replaced an ongoing upload)
    REJECTED = "rejected"
    FAILED = "failed"  # offline, or the CALL failed
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    UPLOAD_FAILED = "upload_failed"  # UploadFailure, BadMessage, PermissionDenied, NotSupportedOperation
    CANCELLED = "cancelled"  # AcceptedCanceled status: a later GetLog replaced this one
    TIMED_OUT = "timed_out"  # no upload before the slot expired
    UNSOLICITED = "unsolicited"  # a LogStatusNotification for a requestId this CSMS never sent


class LogRequest(models.Model):
    """A GetLog (``request_id`` allocated per station), its upload slot and every LogStatusNotification the
    station sent for it (``statuses``: ``[{"status", "at", "statusInfo"}]``)."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.PROTECT, related_name="+")
    request_id = models.IntegerField()
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.PROTECT, related_name="log_request"
    )
    slot = models.OneToOneField(UploadSlot, null=True, blank=True, on_delete=models.PROTECT, related_name="log_request")
    log_type = models.CharField(max_length=16, choices=LogType.choices, default=LogType.DIAGNOSTICS)
    oldest_timestamp = models.DateTimeField(null=True, blank=True)
    latest_timestamp = models.DateTimeField(null=True, blank=True)
    retries = models.IntegerField(null=True, blank=True)
    retry_interval_s = models.IntegerField(null=True, blank=True)
    protocol = models.CharField(max_length=4, choices=FileTransferProtocol.choices, default=FileTransferProtocol.HTTP)
    remote_location = models.CharField(max_length=512, blank=True)
    state = models.CharField(max_length=16, choices=LogRequestState.choices, default=LogRequestState.REQUESTED)
    station_status = models.CharField(max_length=20, blank=True, help_text="The GetLog answer's status.")
    station_filename = models.CharField(max_length=255, blank=True, help_text="The GetLog answer's filename.")
    status_info = models.JSONField(null=True, blank=True)
    last_status = models.CharField(max_length=24, blank=True, help_text="The last LogStatusNotification status.")
    statuses = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["station", "request_id"], name="uniq_log_request")]
        permissions = [("download_logrequest", "Can download the log files stations uploaded")]

    def __str__(self) -> str:
        return f"GetLog {self.request_id} on {self.station_id} ({self.state})"
