"""Smart charging: charging profiles, composite schedules (block K) and sites with load management."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

# Charging profiles (K-block)


class ChargingProfilePurpose(models.TextChoices):
    CHARGING_STATION_EXTERNAL_CONSTRAINTS = "ChargingStationExternalConstraints"
    CHARGING_STATION_MAX_PROFILE = "ChargingStationMaxProfile"
    TX_DEFAULT_PROFILE = "TxDefaultProfile"
    TX_PROFILE = "TxProfile"


class ChargingProfileKind(models.TextChoices):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class RecurrencyKind(models.TextChoices):
    DAILY = "Daily"
    WEEKLY = "Weekly"


class ChargingRateUnit(models.TextChoices):
    A = "A"
    W = "W"


class ChargingProfileState(models.TextChoices):
    PENDING = "pending", "pending (sent, not answered)"
    INSTALLED = "installed"
    REJECTED = "rejected"
    CLEARED = "cleared"
    FAILED = "failed", "failed (station offline or no answer)"


class ChargingProfileSource(models.TextChoices):
    CSMS = "csms", "sent by the CSMS"
    REPORTED = "reported", "reported by the station (ReportChargingProfiles)"


class ChargingProfile(models.Model):
    """The CSMS's record of a charging profile on a station: sent by the CSMS (SetChargingProfile, from any door)
    or reported by the station (ReportChargingProfiles). ``state`` follows the station's answers."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="charging_profiles")
    evse_id = models.PositiveIntegerField(default=0)
    profile_id = models.IntegerField(help_text="The ChargingProfileType id.")
    stack_level = models.PositiveIntegerField()
    purpose = models.CharField(max_length=40, choices=ChargingProfilePurpose.choices)
    kind = models.CharField(max_length=10, choices=ChargingProfileKind.choices)
    recurrency_kind = models.CharField(max_length=8, choices=RecurrencyKind.choices, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)
    transaction_id = models.CharField(max_length=36, blank=True, help_text="TxProfile: the station's transactionId.")
    custom_data = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=ChargingProfileSource.choices, default=ChargingProfileSource.CSMS)
    state = models.CharField(max_length=10, choices=ChargingProfileState.choices, default=ChargingProfileState.PENDING)
    station_status = models.CharField(max_length=20, blank=True, help_text="SetChargingProfile answer's status.")
    status_info = models.JSONField(null=True, blank=True)
    charging_limit_source = models.CharField(max_length=8, blank=True, help_text="Reported: its chargingLimitSource.")
    in_remote_start = models.BooleanField(default=False, help_text="Sent inside a RequestStartTransaction.")
    command = models.ForeignKey("stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    clear_command = models.ForeignKey(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report_request_id = models.IntegerField(null=True, blank=True, help_text="The GetChargingProfiles that listed it.")
    cleared_reason = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["station", "evse_id", "purpose", "-stack_level", "profile_id"]
        indexes = [
            models.Index(fields=["station", "state"], name="chprofile_station_state"),
            models.Index(fields=["station", "transaction_id"], name="chprofile_station_tx"),
        ]
        constraints = [
            # One installed profile per id on a station: a new one with the same id replaces it (K01.FR.05).
            models.UniqueConstraint(
                fields=["station", "profile_id"],
                condition=models.Q(state="installed"),
                name="uniq_installed_profile_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose} #{self.profile_id} (EVSE {self.evse_id}, stack {self.stack_level}, {self.state})"


class ChargingSchedule(models.Model):
    """One ChargingScheduleType of a profile."""

    profile = models.ForeignKey(ChargingProfile, on_delete=models.CASCADE, related_name="schedules")
    position = models.PositiveSmallIntegerField(default=0, help_text="Its place in the profile's list.")
    schedule_id = models.IntegerField()
    charging_rate_unit = models.CharField(max_length=1, choices=ChargingRateUnit.choices)
    start_schedule = models.DateTimeField(null=True, blank=True)
    duration_s = models.PositiveIntegerField(null=True, blank=True)
    min_charging_rate = models.FloatField(null=True, blank=True)
    sales_tariff = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["profile", "position"]
        constraints = [models.UniqueConstraint(fields=["profile", "position"], name="uniq_schedule_position")]

    def __str__(self) -> str:
        return f"schedule {self.schedule_id} ({self.charging_rate_unit})"


class ChargingSchedulePeriod(models.Model):
    """One ChargingSchedulePeriodType: from ``start_period_s`` after the schedule's start, ``limit`` in its unit."""

    schedule = models.ForeignKey(ChargingSchedule, on_delete=models.CASCADE, related_name="periods")
    start_period_s = models.PositiveIntegerField()
    limit = models.FloatField()
    number_phases = models.PositiveSmallIntegerField(null=True, blank=True)
    phase_to_use = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["schedule", "start_period_s"]
        constraints = [models.UniqueConstraint(fields=["schedule", "start_period_s"], name="uniq_period_start")]

    def __str__(self) -> str:
        return f"+{self.start_period_s}s: {self.limit}"


class ProfileReportState(models.TextChoices):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    NO_PROFILES = "no_profiles", "no profiles (NoProfiles)"
    RECEIVING = "receiving"
    COMPLETE = "complete"
    FAILED = "failed", "failed (station offline)"


class ChargingProfileReport(models.Model):
    """A GetChargingProfiles request (requestId allocated per station) and its ReportChargingProfiles parts."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    request_id = models.IntegerField()
    command = models.ForeignKey("stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    evse_id = models.IntegerField(null=True, blank=True)
    criteria = models.JSONField(default=dict, blank=True, help_text="The request's chargingProfile criteria.")
    state = models.CharField(max_length=12, choices=ProfileReportState.choices, default=ProfileReportState.REQUESTED)
    parts_received = models.PositiveIntegerField(default=0)
    profiles_received = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["station", "request_id"], name="uniq_profile_report_request")]

    def __str__(self) -> str:
        return f"GetChargingProfiles {self.request_id} ({self.state})"


class ChargingLimitSource(models.TextChoices):
    EMS = "EMS"
    OTHER = "Other"
    SO = "SO"
    CSO = "CSO"


class ExternalChargingLimit(models.Model):
    """A NotifyChargingLimit: an external limit (a grid operator's, an EMS's) with its schedules, until a
    ClearedChargingLimit of its source (and EVSE) clears it. Included in the CSMS's composite schedule."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField(null=True, blank=True, help_text="None: the whole station.")
    source = models.CharField(max_length=8, choices=ChargingLimitSource.choices)
    is_grid_critical = models.BooleanField(null=True, blank=True)
    charging_schedules = models.JSONField(default=list, blank=True, help_text="ChargingScheduleType list, as sent.")
    received_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["station", "cleared_at"], name="extlimit_station_cleared")]

    def __str__(self) -> str:
        return f"{self.source} limit (EVSE {self.evse_id})"


class EvChargingNeeds(models.Model):
    """A NotifyEVChargingNeeds: what the EV asked for, and how the CSMS answered it."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField()
    requested_energy_transfer = models.CharField(max_length=24)
    departure_time = models.DateTimeField(null=True, blank=True)
    max_schedule_tuples = models.PositiveIntegerField(null=True, blank=True)
    ac_charging_parameters = models.JSONField(null=True, blank=True)
    dc_charging_parameters = models.JSONField(null=True, blank=True)
    answered_status = models.CharField(max_length=12)
    profile_command = models.ForeignKey(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The SetChargingProfile sent to meet the needs (CSMS_EV_CHARGING_NEEDS_SEND_PROFILE).",
    )  # fmt: skip
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"EV needs on EVSE {self.evse_id} ({self.requested_energy_transfer})"


class EvChargingSchedule(models.Model):
    """A NotifyEVChargingSchedule: the schedule the EV plans to follow (ISO 15118)."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField()
    time_base = models.DateTimeField()
    charging_schedule = models.JSONField()
    answered_status = models.CharField(
        max_length=10,
        default="Accepted",
        help_text="The CSMS's answer (CSMS_EV_SCHEDULE_CHECK: Rejected above its composite).",
    )
    status_info = models.JSONField(null=True, blank=True, help_text="The answer's statusInfo, when Rejected.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"EV schedule on EVSE {self.evse_id} from {self.time_base}"


class StationCompositeSchedule(models.Model):
    """A station's answer to GetCompositeSchedule (shown beside the CSMS's own computation)."""

    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    command = models.OneToOneField("stations.Command", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField()
    duration_s = models.PositiveIntegerField()
    rate_unit = models.CharField(max_length=1, choices=ChargingRateUnit.choices, blank=True)
    status = models.CharField(max_length=10)
    status_info = models.JSONField(null=True, blank=True)
    schedule = models.JSONField(null=True, blank=True, help_text="The answer's CompositeScheduleType.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"composite of EVSE {self.evse_id} ({self.status})"


# Sites and load management


class SiteStrategy(models.TextChoices):
    EQUAL_SHARE = "equal_share", "Equal share"
    PRIORITY = "priority", "Priority by token group"
    FIRST_COME = "first_come", "First come"


class PhaseRotation(models.TextChoices):
    """OCPP's PhaseRotation: which grid phase (R, S, T = L1, L2, L3) each of the station's L1, L2, L3 is wired to."""

    RST = "RST"
    RTS = "RTS"
    SRT = "SRT"
    STR = "STR"
    TRS = "TRS"
    TSR = "TSR"


class Site(models.Model):
    """A group of stations behind one grid connection, kept within its capacity per phase."""

    name = models.CharField(max_length=100, unique=True)
    capacity_a = models.DecimalField(
        max_digits=8, decimal_places=1, null=True, blank=True, help_text="Capacity per phase in A (or capacity_w)."
    )
    capacity_w = models.DecimalField(
        max_digits=10, decimal_places=0, null=True, blank=True, help_text="Capacity over all phases in W."
    )
    phases = models.PositiveSmallIntegerField(default=3, choices=[(1, "1"), (3, "3")])
    voltage_v = models.DecimalField(max_digits=5, decimal_places=1, default=Decimal("230.0"))
    strategy = models.CharField(max_length=12, choices=SiteStrategy.choices, default=SiteStrategy.EQUAL_SHARE)
    min_current_a = models.DecimalField(
        max_digits=5, decimal_places=1, null=True, blank=True, help_text="Empty: CSMS_SITE_MIN_CURRENT_A."
    )
    fallback_limit_a = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        help_text="TxDefaultProfile limit on member stations (kept free on every idle EVSE). "
        "Empty: CSMS_SITE_FALLBACK_LIMIT_A.",
    )
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone of the site.")
    # Debounce: every request bumps requested_generation; the recompute job runs only for the newest one.
    requested_generation = models.PositiveIntegerField(default=0, editable=False)
    computed_generation = models.PositiveIntegerField(default=0, editable=False)
    pending_reasons = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(capacity_a__isnull=False, capacity_w__isnull=True)
                | models.Q(capacity_a__isnull=True, capacity_w__isnull=False),
                name="site_capacity_a_or_w",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SiteMember(models.Model):
    """A station's membership of a site (a station is in at most one site)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="members")
    station = models.OneToOneField("stations.ChargingStation", on_delete=models.CASCADE, related_name="site_membership")
    max_current_a = models.DecimalField(
        max_digits=6, decimal_places=1, null=True, blank=True, help_text="The station's own limit per phase."
    )
    phase_rotation = models.CharField(max_length=3, choices=PhaseRotation.choices, default=PhaseRotation.RST)
    # The TxDefaultProfile fallback the station accepted, and the one in flight.
    fallback_limit_a = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True, editable=False)
    fallback_pending_a = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True, editable=False)
    fallback_command = models.ForeignKey(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["site", "station"]

    def __str__(self) -> str:
        return f"{self.station_id} in {self.site_id}"


class EvseLimit(models.Model):
    """An EVSE's own limit per phase within its site."""

    member = models.ForeignKey(SiteMember, on_delete=models.CASCADE, related_name="evse_limits")
    evse_id = models.PositiveIntegerField()
    max_current_a = models.DecimalField(max_digits=6, decimal_places=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "evse_id"], name="uniq_site_evse_limit")]

    def __str__(self) -> str:
        return f"EVSE {self.evse_id}: {self.max_current_a} A"


class SitePriority(models.Model):
    """Strategy ``priority``: sessions of the id tokens of this group (or the group token itself) rank higher."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="priorities")
    group_id_token = models.ForeignKey("transactions.IdToken", on_delete=models.CASCADE, related_name="+")
    priority = models.IntegerField(default=0, help_text="Higher first; tokens without a group: 0.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "group_id_token"], name="uniq_site_priority_group")]

    def __str__(self) -> str:
        return f"{self.group_id_token_id}: {self.priority}"


class EvseAllocation(models.Model):
    """The CSMS's allocation to one running session of a site, and what the station accepted of it."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="allocations")
    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField()
    transaction = models.OneToOneField(
        "transactions.ChargingTransaction", on_delete=models.CASCADE, related_name="site_allocation"
    )
    target_a = models.DecimalField(max_digits=6, decimal_places=1, help_text="The latest allocation per phase.")
    limit_a = models.DecimalField(
        max_digits=6, decimal_places=1, null=True, blank=True, help_text="The TxProfile limit the station accepted."
    )
    pending_a = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    pending_command = models.ForeignKey(
        "stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rejected = models.BooleanField(default=False, help_text="The station refused a lower limit: pinned.")
    reason = models.CharField(max_length=200, blank=True)
    underdraw_capped = models.BooleanField(default=False)
    measured_a = models.JSONField(null=True, blank=True, help_text="Current.Import per phase (L1, L2, L3), A.")
    measured_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site", "station", "evse_id"]
        indexes = [models.Index(fields=["station", "evse_id"], name="sc_alloc_station_evse")]

    def __str__(self) -> str:
        return f"{self.station_id}/{self.evse_id}: {self.target_a} A"


class AllocationRoundState(models.TextChoices):
    LOWERING = "lowering", "Lowering"
    RAISING = "raising", "Raising"
    DONE = "done", "Done"
    SUPERSEDED = "superseded", "Superseded"
    FAILED = "failed", "Failed"


class AllocationRound(models.Model):
    """One recompute of a site: why, the capacity, the total allocated and measured per phase (the allocation log)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="rounds")
    generation = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=AllocationRoundState.choices, default=AllocationRoundState.DONE)
    capacity_a = models.JSONField(help_text="Capacity per grid phase, A.")
    allocated_a = models.JSONField(help_text="Allocated per grid phase, A.")
    measured_a = models.JSONField(null=True, blank=True, help_text="Measured draw per grid phase, A.")
    cpu_ms = models.FloatField(default=0, help_text="CPU time of the allocation function.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["site", "-created_at"], name="sc_round_site_created")]

    def __str__(self) -> str:
        return f"{self.site_id} #{self.generation} ({self.state})"


class AllocationStep(models.TextChoices):
    LOWER = "lower", "Lower"
    RAISE = "raise", "Raise"
    SAME = "same", "Unchanged"


class AllocationEntry(models.Model):
    """One EVSE's allocation in a round, with its reason and the SetChargingProfile that carried it."""

    round = models.ForeignKey(AllocationRound, on_delete=models.CASCADE, related_name="entries")
    station = models.ForeignKey("stations.ChargingStation", on_delete=models.CASCADE, related_name="+")
    evse_id = models.PositiveIntegerField()
    transaction = models.ForeignKey(
        "transactions.ChargingTransaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    limit_a = models.DecimalField(max_digits=6, decimal_places=1)
    previous_a = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    step = models.CharField(max_length=5, choices=AllocationStep.choices)
    reason = models.CharField(max_length=200)
    command = models.ForeignKey("stations.Command", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["round", "station", "evse_id"]

    def __str__(self) -> str:
        return f"{self.station_id}/{self.evse_id}: {self.limit_a} A ({self.step})"
