"""Admin: charging profiles and their reports are read-only (they change through the stations' answers and
messages); sites (capacity, strategy, members, limits, priorities) are operators' settings; allocations and their log
are the CSMS's own record of what it decided and sent (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

from . import sites

# Charging profiles (K-block)
from .models import (
    AllocationEntry,
    AllocationRound,
    ChargingProfile,
    ChargingProfileReport,
    ChargingSchedule,
    ChargingSchedulePeriod,
    EvChargingNeeds,
    EvChargingSchedule,
    EvseAllocation,
    EvseLimit,
    ExternalChargingLimit,
    Site,
    SiteMember,
    SitePriority,
    StationCompositeSchedule,
)


class ChargingScheduleInline(ReadOnlyInline, admin.TabularInline):
    model = ChargingSchedule
    fields = ("position", "schedule_id", "charging_rate_unit", "start_schedule", "duration_s", "min_charging_rate")
    readonly_fields = fields


class ChargingSchedulePeriodInline(ReadOnlyInline, admin.TabularInline):
    model = ChargingSchedulePeriod
    fields = ("start_period_s", "limit", "number_phases", "phase_to_use")
    readonly_fields = fields


@admin.register(ChargingProfile)
class ChargingProfileAdmin(ReadOnlyAdmin):
    list_display = (
        "station", "profile_id", "evse_id", "purpose", "kind", "stack_level", "transaction_id", "source", "state",
        "station_status", "updated_at",
    )  # fmt: skip
    list_filter = ("state", "source", "purpose", "kind")
    search_fields = ("station__identity", "transaction_id")
    list_select_related = ("station",)
    inlines = [ChargingScheduleInline]


@admin.register(ChargingSchedule)
class ChargingScheduleAdmin(ReadOnlyAdmin):
    list_display = ("profile", "schedule_id", "charging_rate_unit", "start_schedule", "duration_s")
    inlines = [ChargingSchedulePeriodInline]


@admin.register(ChargingSchedulePeriod)
class ChargingSchedulePeriodAdmin(ReadOnlyAdmin):
    list_display = ("schedule", "start_period_s", "limit", "number_phases", "phase_to_use")


@admin.register(ChargingProfileReport)
class ChargingProfileReportAdmin(ReadOnlyAdmin):
    list_display = ("station", "request_id", "state", "parts_received", "profiles_received", "created_at")
    list_filter = ("state",)
    search_fields = ("station__identity",)


@admin.register(ExternalChargingLimit)
class ExternalChargingLimitAdmin(ReadOnlyAdmin):
    list_display = ("station", "evse_id", "source", "is_grid_critical", "received_at", "cleared_at")
    list_filter = ("source", "is_grid_critical")
    search_fields = ("station__identity",)


@admin.register(EvChargingNeeds)
class EvChargingNeedsAdmin(ReadOnlyAdmin):
    list_display = (
        "station",
        "evse_id",
        "requested_energy_transfer",
        "departure_time",
        "answered_status",
        "received_at",
    )
    search_fields = ("station__identity",)


@admin.register(EvChargingSchedule)
class EvChargingScheduleAdmin(ReadOnlyAdmin):
    list_display = ("station", "evse_id", "time_base", "answered_status", "received_at")
    search_fields = ("station__identity",)


@admin.register(StationCompositeSchedule)
class StationCompositeScheduleAdmin(ReadOnlyAdmin):
    list_display = ("station", "evse_id", "duration_s", "rate_unit", "status", "received_at")
    search_fields = ("station__identity",)


# Sites and load management


class SiteMemberInline(admin.TabularInline):
    model = SiteMember
    extra = 0
    fields = ["station", "max_current_a", "phase_rotation", "fallback_limit_a"]
    readonly_fields = ["fallback_limit_a"]
    raw_id_fields = ["station"]


class SitePriorityInline(admin.TabularInline):
    model = SitePriority
    extra = 0
    raw_id_fields = ["group_id_token"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "capacity_a", "capacity_w", "phases", "strategy", "computed_generation"]
    list_filter = ["strategy"]
    search_fields = ["name"]
    inlines = [SiteMemberInline, SitePriorityInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        sites.site_changed(site=form.instance, reason="changed in the admin")


@admin.register(EvseLimit)
class EvseLimitAdmin(admin.ModelAdmin):
    list_display = ["member", "evse_id", "max_current_a"]
    raw_id_fields = ["member"]


@admin.register(EvseAllocation)
class EvseAllocationAdmin(ReadOnlyAdmin):
    list_display = ["site", "station", "evse_id", "target_a", "limit_a", "pending_a", "reason", "updated_at"]
    list_filter = ["site"]
    list_select_related = ["site", "station"]


class AllocationEntryInline(ReadOnlyInline, admin.TabularInline):
    model = AllocationEntry
    fields = ["station", "evse_id", "limit_a", "previous_a", "step", "reason", "command"]
    readonly_fields = ["station", "evse_id", "limit_a", "previous_a", "step", "reason", "command"]


@admin.register(AllocationRound)
class AllocationRoundAdmin(ReadOnlyAdmin):
    list_display = ["site", "generation", "state", "reason", "allocated_a", "capacity_a", "created_at"]
    list_filter = ["site", "state"]
    inlines = [AllocationEntryInline]


@admin.register(AllocationEntry)
class AllocationEntryAdmin(ReadOnlyAdmin):
    list_display = ["round", "station", "evse_id", "limit_a", "step", "reason"]
    list_select_related = ["round", "station"]
