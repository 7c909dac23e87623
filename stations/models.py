"""Charging stations, their EVSEs and connectors, boots, status history, connections and the message log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.db.models import Q
from django.utils import timezone

from security.hashers import ALGORITHM as STATION_PASSWORD_HASHER


class RegistrationStatus(models.TextChoices):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class ValidationMode(models.TextChoices):
    STRICT = "strict"
    LENIENT = "lenient"


class SecurityProfile(models.IntegerChoices):
    UNSECURED = 0, "0: no authentication"
    BASIC = 1, "1: HTTP Basic, no TLS"
    BASIC_TLS = 2, "2: HTTP Basic over TLS"
    CLIENT_CERT = 3, "3: TLS client certificate"


def default_validation_mode() -> str:
    return settings.CSMS_DEFAULT_VALIDATION_MODE


class OperationalStatus(models.TextChoices):
    OPERATIVE = "Operative"
    INOPERATIVE = "Inoperative"


class IntendedAvailability(models.Model):
    """The CSMS's view of the availability it asked for (ChangeAvailability answers), on a station, EVSE or
    connector: what the station reports is the connector status; this is what the operator intended."""

    # "" = never changed by the CSMS (a station starts Operative).
    intended_operational = models.CharField(max_length=12, choices=OperationalStatus.choices, blank=True)
    # A Scheduled answer: the status the station will switch to once it can (e.g. after the running session).
    availability_scheduled = models.CharField(max_length=12, choices=OperationalStatus.choices, blank=True)
    availability_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class ResetState(models.TextChoices):
    AWAITING_REBOOT = "awaiting_reboot"  # Accepted or Scheduled: the next BootNotification confirms it
    CONFIRMED = "confirmed"  # the station booted after the reset
    REJECTED = "rejected"


class ChargingStation(IntendedAvailability):
    identity = models.CharField(max_length=48, unique=True, help_text="The station's OCPP identity (URL path).")
    description = models.CharField(max_length=200, blank=True)
    # Answer given at the next BootNotification; editable by operators.
    registration_status = models.CharField(
        max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.ACCEPTED
    )
    # Answer actually given at the last BootNotification: gates every other request.
    boot_status = models.CharField(max_length=10, choices=RegistrationStatus.choices, blank=True)
    security_profile = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices, default=SecurityProfile.UNSECURED
    )
    # During a security-profile upgrade (security/upgrade.py) both profiles are accepted until the station's
    # first connection on the pending one, which makes it the station's profile.
    pending_security_profile = models.PositiveSmallIntegerField(choices=SecurityProfile.choices, null=True, blank=True)
    password_hash = models.CharField(max_length=255, blank=True, editable=False)
    # After a password rotation the station accepted (security/rotation.py): the old password, still valid until
    # the station connects with the new one.
    previous_password_hash = models.CharField(max_length=255, blank=True, editable=False)
    validation_mode = models.CharField(max_length=10, choices=ValidationMode.choices, default=default_validation_mode)
    # Latest boot data (denormalised from the last BootRecord for lists and the API).
    vendor_name = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=20, blank=True)
    serial_number = models.CharField(max_length=25, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    modem_iccid = models.CharField(max_length=20, blank=True)
    modem_imsi = models.CharField(max_length=20, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    # Connection state.
    is_online = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    current_connection = models.ForeignKey(
        "Connection", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel_name = models.CharField(max_length=200, blank=True, editable=False)
    # The last station-level Reset (answer hook) and its confirmation by the next BootNotification.
    reset_state = models.CharField(max_length=16, choices=ResetState.choices, blank=True)
    reset_requested_at = models.DateTimeField(null=True, blank=True)
    reset_confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["identity"]
        indexes = [models.Index(fields=["is_online"]), models.Index(fields=["model"])]

    def __str__(self) -> str:
        return self.identity

    def set_password(self, raw_password: str | None) -> None:
        # A fast salted hash suited to long random machine secrets (security/hashers.py explains why).
        self.password_hash = make_password(raw_password, hasher=STATION_PASSWORD_HASHER) if raw_password else ""

    def check_password(self, raw_password: str) -> bool:
        """Verify; a correct password under a legacy (PBKDF2) hash is re-hashed and saved at once."""
        if not self.password_hash:
            return False

        def upgrade(raw: str) -> None:
            self.set_password(raw)
            if self.pk:
                ChargingStation.objects.filter(pk=self.pk).update(password_hash=self.password_hash)

        return check_password(raw_password, self.password_hash, upgrade, preferred=STATION_PASSWORD_HASHER)

    @property
    def allowed_security_profiles(self) -> set[int]:
        """Its profile and, during an upgrade, the pending one."""
        pending = self.pending_security_profile
        return {self.security_profile} | ({pending} if pending is not None else set())

    @property
    def requires_password(self) -> bool:
        return self.security_profile in (SecurityProfile.BASIC, SecurityProfile.BASIC_TLS) or bool(self.password_hash)

    @property
    def is_accepted(self) -> bool:
        return self.boot_status == RegistrationStatus.ACCEPTED


class Evse(IntendedAvailability):
    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="evses")
    evse_id = models.PositiveIntegerField()

    class Meta:
        ordering = ["station", "evse_id"]
        constraints = [models.UniqueConstraint(fields=["station", "evse_id"], name="uniq_evse_per_station")]
        verbose_name = "EVSE"

    def __str__(self) -> str:
        return f"{self.station_id}/{self.evse_id}"


class ConnectorStatus(models.TextChoices):
    AVAILABLE = "Available"
    OCCUPIED = "Occupied"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class Connector(IntendedAvailability):
    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=ConnectorStatus.choices, blank=True)
    # Station's timestamp of the status above; a late, older StatusNotification does not overwrite a newer one.
    status_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["evse", "connector_id"]
        constraints = [models.UniqueConstraint(fields=["evse", "connector_id"], name="uniq_connector_per_evse")]

    def __str__(self) -> str:
        return f"{self.evse}/{self.connector_id}"


class StatusNotificationRecord(models.Model):
    """History of every StatusNotification, in arrival order."""

    # Led by the indexes below: no single-column one to update per StatusNotification.
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="status_history", db_index=False)
    status = models.CharField(max_length=12, choices=ConnectorStatus.choices)
    timestamp = models.DateTimeField(help_text="As reported by the station.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["connector", "-received_at"])]
        # A station retrying the same notification (with a new message id) adds no second row.
        constraints = [
            models.UniqueConstraint(fields=["connector", "timestamp", "status"], name="uniq_status_notification")
        ]

    def __str__(self) -> str:
        return f"{self.connector}: {self.status} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class BootRecord(models.Model):
    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="boots")
    reason = models.CharField(max_length=20)
    vendor_name = models.CharField(max_length=50)
    model = models.CharField(max_length=20)
    serial_number = models.CharField(max_length=25, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    modem_iccid = models.CharField(max_length=20, blank=True)
    modem_imsi = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=RegistrationStatus.choices, help_text="Answer given.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.station_id} boot {self.reason} -> {self.status}"


class StationEvent(models.Model):
    """One EventData of a NotifyEvent."""

    # Led by the indexes below: no single-column one to update per event.
    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="events", db_index=False)
    generated_at = models.DateTimeField()
    seq_no = models.PositiveIntegerField()
    event_id = models.IntegerField()
    timestamp = models.DateTimeField()
    trigger = models.CharField(max_length=20)
    cause = models.IntegerField(null=True, blank=True)
    actual_value = models.CharField(max_length=2500)
    tech_code = models.CharField(max_length=50, blank=True)
    tech_info = models.CharField(max_length=500, blank=True)
    cleared = models.BooleanField(null=True)
    transaction_id = models.CharField(max_length=36, blank=True)
    variable_monitoring_id = models.IntegerField(null=True, blank=True)
    event_notification_type = models.CharField(max_length=30)
    component = models.JSONField()
    variable = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    # Raised as an alert: its monitor's severity (stored when it was received) is <= CSMS_EVENT_ALERT_SEVERITY.
    alert = models.BooleanField(default=False)
    severity = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Its monitor's, when known.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["station", "-timestamp"]),
            models.Index(
                fields=["-timestamp"], name="station_event_open_alert", condition=Q(alert=True, acknowledged_at=None)
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["station", "generated_at", "seq_no", "event_id"], name="uniq_station_event")
        ]

    def __str__(self) -> str:
        return f"{self.station_id} event {self.event_id} ({self.trigger})"


class ConnectionEvent(models.TextChoices):
    ACCEPTED = "accepted"
    REFUSED = "refused"


class ServerProcess(models.Model):
    """A daphne process's lease (stations/leases.py): registered at its start, renewed from its event loop every
    third of ``CSMS_PROCESS_LEASE_S``. A process whose lease ran out (killed) has what it left behind (its open
    connections, its commands in flight) ended by the live processes; a stopped one ends its own."""

    class End(models.TextChoices):
        STOPPED = "stopped", "stopped (graceful shutdown)"
        EXPIRED = "expired", "lease expired (process died): cleaned up by another process"

    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    renewed_at = models.DateTimeField(default=timezone.now)
    # On the database's clock (every host compares against the same one).
    lease_until = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end = models.CharField(max_length=10, choices=End.choices, blank=True)
    cleaned_up = models.JSONField(null=True, blank=True, help_text="What its end closed: connections, commands.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["lease_until"], condition=Q(ended_at__isnull=True), name="process_live")]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} (#{self.pk})"


class Connection(models.Model):
    """Connection log: every handshake, accepted or refused, and how it ended."""

    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="connections"
    )
    identity = models.CharField(max_length=200, help_text="As presented, even when refused.")
    outcome = models.CharField(max_length=10, choices=ConnectionEvent.choices)
    reason = models.CharField(max_length=200, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    subprotocol = models.CharField(max_length=32, blank=True)
    channel_name = models.CharField(max_length=200, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    close_code = models.IntegerField(null=True, blank=True)
    replaced_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The daphne process holding the socket (its lease). No database constraint: a connection is recorded even
    # when the lease row is not there (yet, or again: a renewal re-creates a deleted row under the same id).
    server_process = models.ForeignKey(
        ServerProcess,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="connections",
    )
    # What an accepted connection came over (null: refused, or recorded before these were kept).
    tls = models.BooleanField(null=True, blank=True, help_text="Over TLS (wss://), as far as the CSMS can trust it.")
    security_profile = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The security profile the connection met (0-3)."
    )

    class Meta:
        ordering = ["-connected_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-connected_at"]),
            models.Index(
                fields=["server_process"], condition=Q(disconnected_at__isnull=True), name="connection_open_by_process"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identity} {self.outcome} at {self.connected_at:%Y-%m-%d %H:%M:%S}"

    @property
    def transport_label(self) -> str:
        """ "wss, profile 2" (empty when not recorded)."""
        parts = [] if self.tls is None else ["wss" if self.tls else "ws"]
        if self.security_profile is not None:
            parts.append(f"profile {self.security_profile}")
        return ", ".join(parts)

    @property
    def duration_label(self) -> str:
        """How long an accepted connection lasted ("" while open or for a refusal)."""
        from csms.charts import duration_text

        if self.outcome != ConnectionEvent.ACCEPTED or self.disconnected_at is None:
            return ""
        return duration_text(self.disconnected_at - self.connected_at)


class Direction(models.TextChoices):
    IN = "in", "station → CSMS"
    OUT = "out", "CSMS → station"


class MessageLog(models.Model):
    # Its index is (station, -created_at): no single-column one to update per frame.
    station = models.ForeignKey(
        ChargingStation, null=True, blank=True, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    connection = models.ForeignKey(Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(null=True, blank=True)
    message_id = models.CharField(max_length=36, blank=True)
    action = models.CharField(max_length=50, blank=True)
    payload = models.JSONField(null=True, blank=True)
    # Frames that could not be parsed are kept as text.
    raw = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_description = models.CharField(max_length=255, blank=True)
    # When the frame was handled (rows are written in batches, a little later).
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
            models.Index(fields=["error_code"], name="msglog_errors", condition=~Q(error_code="")),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.action or self.message_type} {self.message_id}"


class ProtocolViolation(models.Model):
    """Schema violations a lenient station got away with (or that were refused), always recorded."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="violations")
    message_id = models.CharField(max_length=36)
    action = models.CharField(max_length=50)
    violations = models.JSONField()
    tolerated = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.message_id} ({len(self.violations)} violations)"


class CommandState(models.TextChoices):
    QUEUED = "queued"
    SENT = "sent"
    ANSWERED = "answered"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    OFFLINE = "offline"


FINAL_COMMAND_STATES = frozenset(
    {CommandState.ANSWERED, CommandState.FAILED, CommandState.TIMED_OUT, CommandState.OFFLINE}
)


class BulkCommand(models.Model):
    """One operator request sent to many stations; each station's outcome is one Command."""

    action = models.CharField(max_length=50)
    request = models.JSONField(help_text="The request payload sent to every station.")
    # How the stations were chosen: {"identities": [...]} or {"online": true, "model": "..."}.
    target = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"bulk {self.action} #{self.pk}"


class Command(models.Model):
    """A CSMS->CS request and its outcome: the operators' audit trail (never deleted by the app)."""

    station = models.ForeignKey(ChargingStation, on_delete=models.PROTECT, related_name="commands")
    action = models.CharField(max_length=50)
    request = models.JSONField()
    state = models.CharField(max_length=10, choices=CommandState.choices, default=CommandState.QUEUED)
    # OCPP-J message id of the CALL (str(pk)); links the command to the message log.
    message_id = models.CharField(max_length=36, blank=True)
    # The consumer channel the command was dispatched to: a closing connection fails what it never received.
    channel_name = models.CharField(max_length=200, blank=True, editable=False)
    response = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_description = models.CharField(max_length=255, blank=True)
    error_details = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bulk = models.ForeignKey(BulkCommand, null=True, blank=True, on_delete=models.PROTECT, related_name="commands")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["station", "-created_at"]),
            models.Index(fields=["action", "-created_at"]),
            models.Index(fields=["state"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} -> {self.station_id} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_COMMAND_STATES


class DataTransferRecord(models.Model):
    """A DataTransfer a station sent (block P) and the status the CSMS answered, whatever the message log keeps."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="data_transfers")
    vendor_id = models.CharField(max_length=255)
    message_id = models.CharField(max_length=50, blank=True)
    data = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, help_text="Accepted, Rejected, UnknownMessageId or UnknownVendorId.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["station", "-received_at"])]

    def __str__(self) -> str:
        return f"DataTransfer {self.vendor_id}/{self.message_id or '-'} {self.status}"


# --- Display messages (block O) -------------------------------------------------------------------------------


class MessagePriority(models.TextChoices):
    ALWAYS_FRONT = "AlwaysFront"
    IN_FRONT = "InFront"
    NORMAL_CYCLE = "NormalCycle"


class MessageState(models.TextChoices):
    CHARGING = "Charging"
    FAULTED = "Faulted"
    IDLE = "Idle"
    UNAVAILABLE = "Unavailable"


class MessageFormat(models.TextChoices):
    ASCII = "ASCII"
    HTML = "HTML"
    URI = "URI"
    UTF8 = "UTF8"


class DisplayMessageSource(models.TextChoices):
    CSMS = "csms", "set by the CSMS"
    REPORTED = "reported", "reported by the station"


class DisplayMessageStatus(models.TextChoices):
    REQUESTED = "requested"  # SetDisplayMessage sent, no answer yet
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # station_status says why (NotSupportedPriority, UnknownTransaction, ...)
    FAILED = "failed"  # offline, or the CALL failed
    CLEARED = "cleared"  # an accepted ClearDisplayMessage
    REPORTED = "reported"  # listed in the station's last complete NotifyDisplayMessages


class DisplayMessage(models.Model):
    """A display message: one the CSMS set (SetDisplayMessage, ``message_id`` allocated per station) or one the
    station listed in NotifyDisplayMessages (``source`` reported; a complete report replaces that set)."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="display_messages")
    source = models.CharField(max_length=8, choices=DisplayMessageSource.choices)
    message_id = models.IntegerField(help_text="The MessageInfo id on the station.")
    priority = models.CharField(max_length=12, choices=MessagePriority.choices)
    state = models.CharField(max_length=12, choices=MessageState.choices, blank=True)
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    transaction_id = models.CharField(max_length=36, blank=True)
    format = models.CharField(max_length=5, choices=MessageFormat.choices)
    language = models.CharField(max_length=8, blank=True)
    content = models.CharField(max_length=512)
    display = models.JSONField(null=True, blank=True, help_text="The display ComponentType, when given.")
    status = models.CharField(max_length=10, choices=DisplayMessageStatus.choices)
    station_status = models.CharField(max_length=30, blank=True, help_text="The station's answer to our Set.")
    status_info = models.JSONField(null=True, blank=True)
    command = models.OneToOneField(
        Command, null=True, blank=True, on_delete=models.PROTECT, related_name="display_message"
    )
    clear_command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    request_id = models.IntegerField(null=True, blank=True, help_text="The GetDisplayMessages that reported it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["station", "source", "-message_id"]
        constraints = [models.UniqueConstraint(fields=["station", "source", "message_id"], name="uniq_display_message")]

    def __str__(self) -> str:
        return f"display message {self.message_id} on {self.station_id} ({self.source}, {self.status})"


class DisplayMessageReportState(models.TextChoices):
    REQUESTED = "requested"
    ACCEPTED = "accepted"  # the station will send NotifyDisplayMessages
    UNKNOWN = "unknown"  # the station has no message matching the request
    FAILED = "failed"
    RECEIVING = "receiving"
    COMPLETE = "complete"


class DisplayMessageReport(models.Model):
    """A GetDisplayMessages (``request_id`` allocated per station) and its NotifyDisplayMessages parts."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="display_message_reports")
    request_id = models.IntegerField()
    command = models.OneToOneField(
        Command, null=True, blank=True, on_delete=models.PROTECT, related_name="display_message_report"
    )
    state = models.CharField(
        max_length=10, choices=DisplayMessageReportState.choices, default=DisplayMessageReportState.REQUESTED
    )
    parts_received = models.PositiveIntegerField(default=0)
    messages_received = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["station", "request_id"], name="uniq_display_message_report")]

    def __str__(self) -> str:
        return f"GetDisplayMessages {self.request_id} on {self.station_id} ({self.state})"


class NetworkProfileStatus(models.TextChoices):
    AWAITING_ROOT = "awaiting_root"  # an upgrade's step 0: sent once the station accepted the CSMSRootCertificate
    SENT = "sent"  # SetNetworkProfile sent, no answer yet
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"
    NO_ANSWER = "no_answer"  # the command failed or timed out (the station may still have stored it)


class NetworkProfile(models.Model):
    """The latest SetNetworkProfile the CSMS sent to a station's configuration slot and the station's answer
    (B09). ``connection_data`` as stored on the command: its VPN/APN passwords, VPN key and SIM PIN
    ``[redacted]``. ``migrating``: a migration to this slot (stations/network_profiles.py) is under way."""

    station = models.ForeignKey(ChargingStation, on_delete=models.CASCADE, related_name="network_profiles")
    configuration_slot = models.PositiveIntegerField()
    connection_data = models.JSONField()
    status = models.CharField(max_length=16, choices=NetworkProfileStatus.choices, default=NetworkProfileStatus.SENT)
    status_reason = models.CharField(max_length=20, blank=True, help_text="The answer's statusInfo.reasonCode.")
    migrating = models.BooleanField(default=False)
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["station", "configuration_slot"]
        constraints = [
            models.UniqueConstraint(fields=["station", "configuration_slot"], name="uniq_network_profile_slot")
        ]

    def __str__(self) -> str:
        return f"{self.station_id} slot {self.configuration_slot} ({self.status})"
