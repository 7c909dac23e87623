"""Firmware images, rollouts and publications (block L); log requests and the stations' file server (block N)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stations.models import ChargingStation, Command

# Firmware images and rollouts


class FirmwareImage(models.Model):
    """A firmware file in Django storage, with what UpdateFirmware / PublishFirmware need to hand it out."""

    version = models.CharField(max_length=50)
    file = models.FileField(upload_to="firmware/images/")
    size_bytes = models.PositiveBigIntegerField(default=0)
    md5_hex = models.CharField(max_length=32, help_text="PublishFirmware's checksum")
    sha256_hex = models.CharField(max_length=64)
    # OCPP's signed firmware: the signing certificate (PEM) and the base64 signature over the file's SHA-256.
    signing_certificate = models.TextField(max_length=5500, blank=True)
    signature = models.CharField(max_length=800, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"firmware {self.version}"


class RolloutState(models.TextChoices):
    RUNNING = "running"
    HALTED = "halted"  # more than halt_failure_share of a wave failed: nothing more is sent
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class FirmwareStatus(models.TextChoices):
    """OCPP 2.0.1 FirmwareStatusEnumType (FirmwareStatusNotification)."""

    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    DOWNLOADING = "Downloading"
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    DOWNLOAD_PAUSED = "DownloadPaused"
    IDLE = "Idle"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALLING = "Installing"
    INSTALLED = "Installed"
    INSTALL_REBOOTING = "InstallRebooting"
    INSTALL_SCHEDULED = "InstallScheduled"
    INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"
    INVALID_SIGNATURE = "InvalidSignature"
    SIGNATURE_VERIFIED = "SignatureVerified"


class TargetState(models.TextChoices):
    """A rollout station's state: the CSMS's own until the station reports, then its last FirmwareStatus."""

    PENDING = "pending"  # not sent yet (next wave, outside the maintenance window, or waiting for a retry)
    SENT = "sent"  # UpdateFirmware sent (or accepted), no FirmwareStatusNotification yet
    REJECTED = "rejected"  # answered Rejected / InvalidCertificate / RevokedCertificate
    FAILED = "failed"  # no answer after every attempt (offline, CALLERROR, timeout) or no status in time
    CANCELLED = "cancelled"  # the rollout was cancelled before this station was sent
    DOWNLOADED = FirmwareStatus.DOWNLOADED.value
    DOWNLOAD_FAILED = FirmwareStatus.DOWNLOAD_FAILED.value
    DOWNLOADING = FirmwareStatus.DOWNLOADING.value
    DOWNLOAD_SCHEDULED = FirmwareStatus.DOWNLOAD_SCHEDULED.value
    DOWNLOAD_PAUSED = FirmwareStatus.DOWNLOAD_PAUSED.value
    IDLE = FirmwareStatus.IDLE.value
    INSTALLATION_FAILED = FirmwareStatus.INSTALLATION_FAILED.value
    INSTALLING = FirmwareStatus.INSTALLING.value
    INSTALLED = FirmwareStatus.INSTALLED.value
    INSTALL_REBOOTING = FirmwareStatus.INSTALL_REBOOTING.value
    INSTALL_SCHEDULED = FirmwareStatus.INSTALL_SCHEDULED.value
    INSTALL_VERIFICATION_FAILED = FirmwareStatus.INSTALL_VERIFICATION_FAILED.value
    INVALID_SIGNATURE = FirmwareStatus.INVALID_SIGNATURE.value
    SIGNATURE_VERIFIED = FirmwareStatus.SIGNATURE_VERIFIED.value


SUCCESS_STATES = frozenset({TargetState.INSTALLED})
FAILURE_STATES = frozenset(
    {
        TargetState.REJECTED,
        TargetState.FAILED,
        TargetState.DOWNLOAD_FAILED,
        TargetState.INSTALLATION_FAILED,
        TargetState.INSTALL_VERIFICATION_FAILED,
        TargetState.INVALID_SIGNATURE,
    }
)
FINAL_TARGET_STATES = SUCCESS_STATES | FAILURE_STATES | {TargetState.CANCELLED}
# Sent and not over: what counts against max_concurrent.
IN_FLIGHT_EXCLUDED = FINAL_TARGET_STATES | {TargetState.PENDING}


class FirmwareRollout(models.Model):
    """UpdateFirmware to a set of stations in waves, advanced by the beat task ``firmware.rollout_advance``."""

    firmware = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="rollouts")
    state = models.CharField(max_length=10, choices=RolloutState.choices, default=RolloutState.RUNNING)
    # How the stations were chosen: {"identities": [...]} or {"vendor", "model", "firmware_version"}.
    target = models.JSONField(default=dict, blank=True)
    wave_size = models.PositiveIntegerField(default=10)
    max_concurrent = models.PositiveIntegerField(default=10, help_text="stations updating at once, at most")
    retrieve_at = models.DateTimeField(null=True, blank=True, help_text="retrieveDateTime; empty: when sent")
    install_at = models.DateTimeField(null=True, blank=True, help_text="installDateTime (optional)")
    # Maintenance window, local times in window_timezone; may wrap midnight. Empty: any time.
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    window_timezone = models.CharField(max_length=64, default="UTC")
    halt_failure_share = models.FloatField(
        default=0.5, help_text="halt when more than this share of a wave fails (0.5: more than half)"
    )
    # CSMS-side resends of an UpdateFirmware nobody answered (offline, CALLERROR, timeout).
    max_attempts = models.PositiveIntegerField(default=3)
    retry_interval_s = models.PositiveIntegerField(default=300)
    # Passed to the station (UpdateFirmware retries / retryInterval: its own download retries). Empty: its default.
    station_retries = models.PositiveIntegerField(null=True, blank=True)
    station_retry_interval_s = models.PositiveIntegerField(null=True, blank=True)
    current_wave = models.PositiveIntegerField(default=0, help_text="the wave being sent (1-based); 0: none yet")
    halt_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"rollout {self.pk} of {self.firmware.version}"


class FirmwareUpdate(models.Model):
    """One UpdateFirmware (from any door) and the station's FirmwareStatusNotifications for its requestId."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="firmware_updates")
    command = models.OneToOneField(Command, on_delete=models.PROTECT, related_name="firmware_update")
    request_id = models.IntegerField()
    location = models.CharField(max_length=512)
    answer_status = models.CharField(max_length=20, blank=True, help_text="UpdateFirmwareResponse status")
    status = models.CharField(max_length=30, choices=FirmwareStatus.choices, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["station", "request_id"], name="firmware_update_request_once")]

    def __str__(self) -> str:
        return f"UpdateFirmware {self.request_id} to station {self.station_id}"


class RolloutStation(models.Model):
    """One station of a rollout: its wave, attempts and state."""

    rollout = models.ForeignKey(FirmwareRollout, on_delete=models.CASCADE, related_name="stations")
    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="+")
    wave = models.PositiveIntegerField()
    state = models.CharField(max_length=30, choices=TargetState.choices, default=TargetState.PENDING)
    update = models.ForeignKey(FirmwareUpdate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    state_at = models.DateTimeField(null=True, blank=True)
    # The station's next BootNotification reported the image's version (see rollouts.rollout_confirm_versions).
    version_confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["wave", "station__identity"]
        constraints = [models.UniqueConstraint(fields=["rollout", "station"], name="rollout_station_once")]
        indexes = [models.Index(fields=["rollout", "state"])]

    def __str__(self) -> str:
        return f"rollout {self.rollout_id} station {self.station_id}: {self.state}"


class FirmwareStatusReport(models.Model):
    """Every FirmwareStatusNotification as received (matched to its UpdateFirmware when the requestId is known)."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="firmware_status_reports")
    request_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=30, choices=FirmwareStatus.choices)
    update = models.ForeignKey(
        FirmwareUpdate, null=True, blank=True, on_delete=models.SET_NULL, related_name="status_reports"
    )
    outcome = models.CharField(max_length=120, blank=True, help_text="what the CSMS did with it")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["station", "-received_at"])]

    def __str__(self) -> str:
        return f"FirmwareStatusNotification {self.status} ({self.request_id})"


class PublishFirmwareStatus(models.TextChoices):
    """OCPP 2.0.1 PublishFirmwareStatusEnumType."""

    IDLE = "Idle"
    DOWNLOAD_SCHEDULED = "DownloadScheduled"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    PUBLISHED = "Published"
    DOWNLOAD_FAILED = "DownloadFailed"
    DOWNLOAD_PAUSED = "DownloadPaused"
    INVALID_CHECKSUM = "InvalidChecksum"
    CHECKSUM_VERIFIED = "ChecksumVerified"
    PUBLISH_FAILED = "PublishFailed"


class FirmwarePublication(models.Model):
    """PublishFirmware of an image to a local controller, its PublishFirmwareStatusNotifications, Unpublish."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="firmware_publications")
    firmware = models.ForeignKey(FirmwareImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    command = models.OneToOneField(Command, on_delete=models.PROTECT, related_name="firmware_publication")
    request_id = models.IntegerField()
    checksum = models.CharField(max_length=32)
    answer_status = models.CharField(max_length=20, blank=True, help_text="PublishFirmwareResponse status")
    status = models.CharField(max_length=20, choices=PublishFirmwareStatus.choices, blank=True)
    locations = models.JSONField(default=list, blank=True, help_text="where the local controller publishes it")
    status_at = models.DateTimeField(null=True, blank=True)
    unpublish_status = models.CharField(max_length=20, blank=True, help_text="UnpublishFirmwareResponse status")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "request_id"], name="firmware_publication_request_once")
        ]

    def __str__(self) -> str:
        return f"PublishFirmware {self.request_id} to station {self.station_id}"


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
