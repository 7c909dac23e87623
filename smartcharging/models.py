"""Smart charging: charging profiles, composite schedules (block K) and sites with load management."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

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
