"""Smart charging records, read-only in the admin: they change through the stations' answers and messages."""

from __future__ import annotations

from django.contrib import admin

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

# Charging profiles (K-block)
from .models import (
    ChargingProfile,
    ChargingProfileReport,
    ChargingSchedule,
    ChargingSchedulePeriod,
    EvChargingNeeds,
    EvChargingSchedule,
    ExternalChargingLimit,
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
    list_display = ("station", "evse_id", "time_base", "received_at")
    search_fields = ("station__identity",)


@admin.register(StationCompositeSchedule)
class StationCompositeScheduleAdmin(ReadOnlyAdmin):
    list_display = ("station", "evse_id", "duration_s", "rate_unit", "status", "received_at")
    search_fields = ("station__identity",)
