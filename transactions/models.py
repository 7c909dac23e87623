"""Id tokens and local authorization lists, charging transactions, their events and meter samples."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

# --- Authorization --------------------------------------------------------------------------------------------


class IdTokenType(models.TextChoices):
    CENTRAL = "Central"
    EMAID = "eMAID"
    ISO14443 = "ISO14443"
    ISO15693 = "ISO15693"
    KEY_CODE = "KeyCode"
    LOCAL = "Local"
    MAC_ADDRESS = "MacAddress"
    NO_AUTHORIZATION = "NoAuthorization"


class AuthorizationStatus(models.TextChoices):
    """AuthorizationStatusEnumType values an operator can give a token (ConcurrentTx is decided per request)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    NO_CREDIT = "NoCredit"
    NOT_ALLOWED_TYPE_EVSE = "NotAllowedTypeEVSE"
    NOT_AT_THIS_LOCATION = "NotAtThisLocation"
    NOT_AT_THIS_TIME = "NotAtThisTime"
    UNKNOWN = "Unknown"


class IdToken(models.Model):
    """A token the CSMS knows. OCPP idTokens are case insensitive: uniqueness ignores case."""

    id_token = models.CharField(max_length=36)
    type = models.CharField(max_length=16, choices=IdTokenType.choices, default=IdTokenType.ISO14443)
    status = models.CharField(max_length=20, choices=AuthorizationStatus.choices, default=AuthorizationStatus.ACCEPTED)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="After this instant an Accepted token is answered as Expired."
    )
    group_id_token = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
        help_text="Group (e.g. fleet) this token belongs to; a token of the group may stop another's transaction.",
    )
    language = models.CharField(max_length=8, blank=True, help_text="RFC 5646 language code (language1).")
    # Empty: valid on every EVSE. Otherwise the EVSE ids (per station numbering) the token may be used on.
    evse_ids = models.JSONField(default=list, blank=True, help_text="EVSE ids the token is limited to; [] = any.")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id_token", "type"]
        verbose_name = "ID token"
        constraints = [models.UniqueConstraint(Lower("id_token"), "type", name="uniq_id_token_type_ci")]

    def __str__(self) -> str:
        return f"{self.id_token} ({self.type})"

    def clean(self) -> None:
        problems: dict[str, str] = {}
        ids = self.evse_ids
        if not isinstance(ids, list) or not all(isinstance(e, int) and not isinstance(e, bool) and e > 0 for e in ids):
            problems["evse_ids"] = "A list of EVSE ids (integers above 0), or [] for every EVSE."
        if self.group_id_token_id is not None and self.group_id_token_id == self.pk:
            problems["group_id_token"] = "A token cannot be its own group."
        if problems:
            raise ValidationError(problems)

    def effective_status(self, now: datetime | None = None) -> str:
        """The status to answer now: an Accepted token past its expiry is Expired."""
        now = now or timezone.now()
        if self.status == AuthorizationStatus.ACCEPTED and self.expires_at is not None and self.expires_at <= now:
            return AuthorizationStatus.EXPIRED
        return self.status

    def as_ocpp(self) -> dict[str, str]:
        return {"idToken": self.id_token, "type": self.type}


class UpdateType(models.TextChoices):
    FULL = "Full"
    DIFFERENTIAL = "Differential"


class SendLocalListStatus(models.TextChoices):
    ACCEPTED = "Accepted"
    FAILED = "Failed"
    VERSION_MISMATCH = "VersionMismatch"


class LocalAuthList(models.Model):
    """A station's local authorization list: what it should hold (``tokens``) and what it acknowledged.

    ``synced_entries`` is the list the station holds at ``station_version`` (``{"<type>:<token lower>":
    AuthorizationData}``); ``pending_*`` describe the update sent but not yet answered.
    """

    station = models.OneToOneField("stations.ChargingStation", on_delete=models.CASCADE, related_name="local_auth_list")
    tokens = models.ManyToManyField(IdToken, blank=True, related_name="local_auth_lists")
    # Highest version ever built: versions only grow, even when the station's own version becomes unknown.
    version = models.PositiveIntegerField(default=0, editable=False)
    station_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Version the station acknowledged; empty = unknown, next update is Full."
    )
    synced_entries = models.JSONField(default=dict, blank=True, editable=False)
    pending_version = models.PositiveIntegerField(null=True, blank=True, editable=False)
    pending_update_type = models.CharField(max_length=12, choices=UpdateType.choices, blank=True, editable=False)
    pending_entries = models.JSONField(null=True, blank=True, editable=False)
    last_status = models.CharField(max_length=16, choices=SendLocalListStatus.choices, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_result_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "local authorization list"

    def __str__(self) -> str:
        return f"local list of {self.station_id} v{self.station_version}"


# --- Transactions ---------------------------------------------------------------------------------------------


class TransactionEventType(models.TextChoices):
    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


class ChargingState(models.TextChoices):
    CHARGING = "Charging"
    EV_CONNECTED = "EVConnected"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    IDLE = "Idle"


class ChargingTransaction(models.Model):
    """A station's transaction. Every field below transaction_id is derived from the stored events and samples
    (incrementally while events arrive in seqNo order, from scratch otherwise), so the result does not depend on
    the order in which (offline, retried) events arrive."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="transactions")
    transaction_id = models.CharField(max_length=36, help_text="The station's transactionId.")
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    id_token = models.CharField(max_length=36, blank=True, help_text="The session's idToken: the first accepted one.")
    id_token_type = models.CharField(max_length=16, choices=IdTokenType.choices, blank=True)
    id_token_status = models.CharField(max_length=20, blank=True, help_text="idTokenInfo.status answered for it.")
    token = models.ForeignKey(
        IdToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions", help_text="Known token."
    )
    started_at = models.DateTimeField(help_text="Started event's timestamp (earliest event until it arrives).")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Ended event's timestamp.")
    has_started_event = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True, help_text="No Ended event received yet.")
    charging_state = models.CharField(max_length=16, choices=ChargingState.choices, blank=True)
    stopped_reason = models.CharField(max_length=24, blank=True)
    remote_start_id = models.IntegerField(null=True, blank=True)
    reservation_id = models.IntegerField(null=True, blank=True)
    number_of_phases_used = models.PositiveIntegerField(null=True, blank=True)
    cable_max_current_a = models.IntegerField(null=True, blank=True)
    time_spent_charging_s = models.PositiveIntegerField(null=True, blank=True)
    had_offline_events = models.BooleanField(default=False)
    # Sequence bookkeeping: missing seqNo between the lowest and highest received (capped list).
    event_count = models.PositiveIntegerField(default=0)
    last_seq_no = models.PositiveIntegerField(null=True, blank=True)
    seq_no_gaps = models.JSONField(default=list, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # Metering, denormalised from MeterSample (Energy.Active.Import.Register, Power.Active.Import).
    meter_start_wh = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    meter_stop_wh = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    energy_wh = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    peak_power_w = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    last_power_w = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    # First/last/peak reading of each energy and power series (transactions.metering.MeteringState): lets an
    # in-order event update the figures above without reading the stored samples. None: derive from the samples.
    metering_state = models.JSONField(null=True, blank=True, default=None, editable=False)
    # The last GetTransactionStatus answer about this session (answer hook): messages_in_queue means the station
    # still holds TransactionEvents of it to deliver.
    status_checked_at = models.DateTimeField(null=True, blank=True)
    ongoing_indicator = models.BooleanField(null=True, blank=True)
    messages_in_queue = models.BooleanField(null=True, blank=True)
    # Tariff and cost (block I, transactions/tariffs.py): the tariff version pinned when the session started, its
    # cost (running: as of cost_at; final once ended) and the last totalCost sent in a CostUpdated.
    tariff_version = models.ForeignKey(
        "TariffVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    cost = models.DecimalField(
        max_digits=18, decimal_places=3, null=True, blank=True, help_text="Total with taxes, in currency."
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217, of the pinned tariff version.")
    cost_at = models.DateTimeField(null=True, blank=True, help_text="When the cost was computed.")
    cost_sent = models.DecimalField(
        max_digits=18, decimal_places=3, null=True, blank=True, help_text="totalCost of the last CostUpdated sent."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "transaction_id"], name="uniq_transaction_per_station")
        ]
        indexes = [
            models.Index(fields=["station", "-started_at"]),
            models.Index(fields=["-started_at"]),
            models.Index(fields=["station", "remote_start_id"]),
            models.Index(fields=["is_active"], name="txn_active", condition=models.Q(is_active=True)),
        ]

    def __str__(self) -> str:
        return f"{self.station_id}/{self.transaction_id}"

    def station_offline_since(self, now: datetime | None = None) -> datetime | None:
        """When an active session's station went quiet, if it has been offline longer than
        ``CSMS_SESSION_OFFLINE_NOTICE_S``: the session is then shown as "station offline since …" (its events may
        still arrive, queued by the station), not as charging. None otherwise (also for a station never seen)."""
        station = self.station
        if not self.is_active or station.is_online or station.last_seen_at is None:
            return None
        now = now or timezone.now()
        if (now - station.last_seen_at).total_seconds() < settings.CSMS_SESSION_OFFLINE_NOTICE_S:
            return None
        return station.last_seen_at


class TransactionEventRecord(models.Model):
    """One TransactionEvent as received; (transaction, seq_no) unique so a retried event is stored once."""

    # Its index is uniq_transaction_event_seq's (transaction, seq_no): no second one to update per event.
    transaction = models.ForeignKey(
        ChargingTransaction, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    seq_no = models.PositiveIntegerField()
    event_type = models.CharField(max_length=8, choices=TransactionEventType.choices)
    timestamp = models.DateTimeField()
    trigger_reason = models.CharField(max_length=24)
    charging_state = models.CharField(max_length=16, choices=ChargingState.choices, blank=True)
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    id_token = models.CharField(max_length=36, blank=True)
    id_token_type = models.CharField(max_length=16, blank=True)
    offline = models.BooleanField(default=False)
    stopped_reason = models.CharField(max_length=24, blank=True)
    remote_start_id = models.IntegerField(null=True, blank=True)
    reservation_id = models.IntegerField(null=True, blank=True)
    number_of_phases_used = models.PositiveIntegerField(null=True, blank=True)
    cable_max_current = models.IntegerField(null=True, blank=True)
    time_spent_charging_s = models.PositiveIntegerField(null=True, blank=True)
    id_token_status = models.CharField(max_length=20, blank=True, help_text="idTokenInfo.status answered.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["transaction", "seq_no"]
        constraints = [models.UniqueConstraint(fields=["transaction", "seq_no"], name="uniq_transaction_event_seq")]

    def __str__(self) -> str:
        return f"{self.transaction_id} #{self.seq_no} {self.event_type}"


class Measurand(models.TextChoices):
    CURRENT_EXPORT = "Current.Export"
    CURRENT_IMPORT = "Current.Import"
    CURRENT_OFFERED = "Current.Offered"
    ENERGY_ACTIVE_EXPORT_REGISTER = "Energy.Active.Export.Register"
    ENERGY_ACTIVE_IMPORT_REGISTER = "Energy.Active.Import.Register"
    ENERGY_REACTIVE_EXPORT_REGISTER = "Energy.Reactive.Export.Register"
    ENERGY_REACTIVE_IMPORT_REGISTER = "Energy.Reactive.Import.Register"
    ENERGY_ACTIVE_EXPORT_INTERVAL = "Energy.Active.Export.Interval"
    ENERGY_ACTIVE_IMPORT_INTERVAL = "Energy.Active.Import.Interval"
    ENERGY_ACTIVE_NET = "Energy.Active.Net"
    ENERGY_REACTIVE_EXPORT_INTERVAL = "Energy.Reactive.Export.Interval"
    ENERGY_REACTIVE_IMPORT_INTERVAL = "Energy.Reactive.Import.Interval"
    ENERGY_REACTIVE_NET = "Energy.Reactive.Net"
    ENERGY_APPARENT_NET = "Energy.Apparent.Net"
    ENERGY_APPARENT_IMPORT = "Energy.Apparent.Import"
    ENERGY_APPARENT_EXPORT = "Energy.Apparent.Export"
    FREQUENCY = "Frequency"
    POWER_ACTIVE_EXPORT = "Power.Active.Export"
    POWER_ACTIVE_IMPORT = "Power.Active.Import"
    POWER_FACTOR = "Power.Factor"
    POWER_OFFERED = "Power.Offered"
    POWER_REACTIVE_EXPORT = "Power.Reactive.Export"
    POWER_REACTIVE_IMPORT = "Power.Reactive.Import"
    SOC = "SoC"
    VOLTAGE = "Voltage"


class Location(models.TextChoices):
    BODY = "Body"
    CABLE = "Cable"
    EV = "EV"
    INLET = "Inlet"
    OUTLET = "Outlet"


class ReadingContext(models.TextChoices):
    INTERRUPTION_BEGIN = "Interruption.Begin"
    INTERRUPTION_END = "Interruption.End"
    OTHER = "Other"
    SAMPLE_CLOCK = "Sample.Clock"
    SAMPLE_PERIODIC = "Sample.Periodic"
    TRANSACTION_BEGIN = "Transaction.Begin"
    TRANSACTION_END = "Transaction.End"
    TRIGGER = "Trigger"


class MeterSample(models.Model):
    """One sampledValue, normalised to the base unit (Wh, W, varh, ...) with the multiplier applied.

    Narrow on purpose: the bulk of the database. Defaults are applied on the way in (measurand
    Energy.Active.Import.Register, location Outlet, context Sample.Periodic); ``phase`` "" = no phase (overall).
    The unique constraint makes a retried MeterValues/TransactionEvent add no second row.
    """

    # No single-column index on either key: each leads a composite index below (uniq_meter_sample, the
    # transaction's readings), which serves its lookups and cascades; one index less to update per sample.
    station = models.ForeignKey(
        "stations.ChargingStation", on_delete=models.CASCADE, related_name="meter_samples", db_index=False
    )
    transaction = models.ForeignKey(
        ChargingTransaction,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="meter_samples",
        db_index=False,
    )
    evse_id = models.PositiveIntegerField(help_text="0 = the station's main meter.")
    # A MeterValues reading and a TransactionEvent reading at the same instant are different rows.
    from_transaction_event = models.BooleanField(default=False)
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=32, choices=Measurand.choices)
    phase = models.CharField(max_length=5, blank=True)
    location = models.CharField(max_length=6, choices=Location.choices, default=Location.OUTLET)
    context = models.CharField(max_length=18, choices=ReadingContext.choices, default=ReadingContext.SAMPLE_PERIODIC)
    value = models.DecimalField(max_digits=24, decimal_places=6)
    unit = models.CharField(max_length=20, help_text="Base unit of value (kWh arrives as Wh).")
    signed_meter_value = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "station",
                    "evse_id",
                    "from_transaction_event",
                    "timestamp",
                    "measurand",
                    "phase",
                    "location",
                    "context",
                ],
                name="uniq_meter_sample",
            )
        ]
        indexes = [
            models.Index(fields=["transaction", "measurand", "phase", "location", "timestamp"]),
            models.Index(fields=["station", "evse_id", "-timestamp"]),
        ]

    def __str__(self) -> str:
        return f"{self.measurand}{'/' + self.phase if self.phase else ''} {self.value} {self.unit}"


class RemoteStartRequest(models.Model):
    """An operator's RequestStartTransaction; its primary key is the ``remoteStartId`` sent to the station,
    which the station repeats in the TransactionEvent of the transaction it starts."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.PROTECT, related_name="+")
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.PROTECT, related_name="remote_start"
    )
    id_token = models.JSONField()
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"remote start {self.pk} on {self.station_id}"

    @property
    def remote_start_id(self) -> int:
        return self.pk


# --- Reservations (block H) -----------------------------------------------------------------------------------


class ReservationState(models.TextChoices):
    REQUESTED = "requested", "requested (ReserveNow sent)"
    ACTIVE = "active", "active (Accepted)"
    REJECTED = "rejected", "rejected by the station"
    FAILED = "failed", "not delivered (station offline, no answer)"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REMOVED = "removed", "removed by the station"
    CONSUMED = "consumed", "consumed by a transaction"


# A reservation in one of these states may still be used, expired or cancelled.
OPEN_RESERVATION_STATES = (ReservationState.REQUESTED, ReservationState.ACTIVE)


class Reservation(models.Model):
    """A ReserveNow sent to a station, whichever door sent it. ``reservation_id`` is the ReserveNow ``id``,
    allocated by the CSMS per station; ``reason`` is the station's word that ended it (ReserveNow status
    Rejected/Occupied/Faulted/Unavailable, ReservationStatusUpdate Expired/Removed) or the CSMS's."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.PROTECT, related_name="reservations")
    reservation_id = models.IntegerField(help_text="The ReserveNow id (unique per station).")
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.PROTECT, related_name="reservation"
    )
    cancel_command = models.ForeignKey(
        "stations.Command", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    evse_id = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: any EVSE (with connector_type).")
    connector_type = models.CharField(max_length=20, blank=True)
    id_token = models.CharField(max_length=36)
    id_token_type = models.CharField(max_length=16, choices=IdTokenType.choices)
    group_id_token = models.CharField(max_length=36, blank=True)
    group_id_token_type = models.CharField(max_length=16, choices=IdTokenType.choices, blank=True)
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=ReservationState.choices, default=ReservationState.REQUESTED)
    reason = models.CharField(max_length=40, blank=True)
    transaction = models.ForeignKey(
        ChargingTransaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="reservations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "reservation_id"], name="uniq_reservation_per_station")
        ]
        indexes = [
            # The expiry sweep reads only open reservations.
            models.Index(
                fields=["expires_at"],
                name="reservation_open_expiry",
                condition=models.Q(state__in=["requested", "active"]),
            ),
        ]

    def __str__(self) -> str:
        return f"reservation {self.reservation_id} on {self.station_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_RESERVATION_STATES


# --- Customer information (block N) ---------------------------------------------------------------------------


class CustomerInformationState(models.TextChoices):
    REQUESTED = "requested"
    ACCEPTED = "accepted"  # report: NotifyCustomerInformation parts follow
    REJECTED = "rejected"
    INVALID = "invalid"  # the station found the request invalid (e.g. no customer reference)
    FAILED = "failed"  # offline, or the CALL failed
    RECEIVING = "receiving"
    COMPLETE = "complete"


class CustomerInformationRequest(models.Model):
    """A CustomerInformation request (``request_id`` allocated per station) and the NotifyCustomerInformation
    ``data`` the station sent, concatenated in seqNo order: the operator's tool for GDPR requests."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.PROTECT, related_name="+")
    request_id = models.IntegerField()
    command = models.OneToOneField(
        "stations.Command", null=True, blank=True, on_delete=models.PROTECT, related_name="customer_information"
    )
    report = models.BooleanField(default=False)
    clear = models.BooleanField(default=False)
    id_token = models.CharField(max_length=36, blank=True, help_text="A pseudonym once a clear anonymised it.")
    id_token_type = models.CharField(max_length=16, choices=IdTokenType.choices, blank=True)
    customer_identifier = models.CharField(max_length=64, blank=True)
    customer_certificate = models.JSONField(null=True, blank=True, help_text="CertificateHashDataType, when given.")
    state = models.CharField(
        max_length=10, choices=CustomerInformationState.choices, default=CustomerInformationState.REQUESTED
    )
    station_status = models.CharField(max_length=10, blank=True)
    status_info = models.JSONField(null=True, blank=True)
    data = models.TextField(blank=True, help_text="The NotifyCustomerInformation data, in seqNo order.")
    parts_received = models.PositiveIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["station", "request_id"], name="uniq_customer_information_request")
        ]

    def __str__(self) -> str:
        return f"CustomerInformation {self.request_id} on {self.station_id} ({self.state})"


class CustomerDataClearance(models.Model):
    """Audit entry of an anonymisation of the CSMS's own records of a customer (after an accepted clear):
    who, when, which pseudonym replaced the token, and how many rows of each kind changed."""

    request = models.ForeignKey(CustomerInformationRequest, on_delete=models.PROTECT, related_name="clearances")
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    performed_at = models.DateTimeField(auto_now_add=True)
    pseudonym = models.CharField(max_length=36, blank=True)
    counts = models.JSONField(default=dict, help_text="Rows anonymised, per kind of record.")
    kept = models.TextField(blank=True, help_text="What was kept, and why.")

    class Meta:
        ordering = ["-performed_at", "-id"]

    def __str__(self) -> str:
        return f"clearance {self.pk} ({self.pseudonym or 'no token'})"


# --- Tariffs and cost (block I) -------------------------------------------------------------------------------


class Tariff(models.Model):
    """Prices for running cost, CostUpdated, totalCost and the CDR. Money in Decimal, prices in ``currency``.

    ``bands``: time-of-day bands, ``[{"start": "HH:MM", "end": "HH:MM", "price_per_kwh"?, "price_per_hour"?,
    "idle_price_per_hour"?}]`` in local time (``CSMS_TARIFF_TIME_ZONE``); a band overrides the prices it names
    between its start and end (end before start: across midnight). Every change to a priced field makes a new
    :class:`TariffVersion`; a session keeps the version it started with (transactions/tariffs.py).
    """

    name = models.CharField(max_length=100, unique=True)
    currency = models.CharField(max_length=3, help_text="ISO 4217, e.g. EUR.")
    price_per_kwh = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    price_per_hour = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal(0), help_text="Per hour of charging (state Charging)."
    )
    idle_price_per_hour = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal(0),
        help_text="Per hour idle: SuspendedEV, or EVConnected after charging; never SuspendedEVSE.",
    )
    session_fee = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    tax_rate_percent = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal(0))
    prices_include_tax = models.BooleanField(default=True, help_text="Prices are gross (tax included).")
    bands = models.JSONField(default=list, blank=True, help_text="Time-of-day bands overriding the prices.")
    is_default = models.BooleanField(default=False, help_text="Applies where no station or token-group tariff does.")
    stations = models.ManyToManyField("stations.ChargingStation", blank=True, related_name="tariffs")
    # A site's tariff applies to its member stations that have no tariff of their own (smartcharging sites).
    sites = models.ManyToManyField("smartcharging.Site", blank=True, related_name="tariffs")
    token_groups = models.ManyToManyField(
        IdToken, blank=True, related_name="group_tariffs", help_text="Group tokens (or tokens) it overrides for."
    )
    version = models.PositiveIntegerField(default=0, editable=False, help_text="Number of the current version.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_tariff"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"


class TariffVersion(models.Model):
    """An immutable copy of a tariff's prices (``prices``: the terms as decimal strings), valid from
    ``valid_from``; sessions point at the version they started with."""

    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    valid_from = models.DateTimeField()
    prices = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tariff", "-number"]
        constraints = [models.UniqueConstraint(fields=["tariff", "number"], name="uniq_tariff_version")]

    def __str__(self) -> str:
        return f"{self.tariff_id} v{self.number}"
