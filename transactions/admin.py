import copy
from typing import Any

from django import forms
from django.contrib import admin

from csms.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import (
    ChargingTransaction,
    CustomerDataClearance,
    CustomerInformationRequest,
    IdToken,
    LocalAuthList,
    MeterSample,
    RemoteStartRequest,
    Reservation,
    Tariff,
    TariffVersion,
    TransactionEventRecord,
)
from .tariffs import tariff_problems, tariff_save


@admin.register(IdToken)
class IdTokenAdmin(admin.ModelAdmin):
    list_display = ("id_token", "type", "status", "expires_at", "group_id_token", "updated_at")
    list_filter = ("status", "type")
    search_fields = ("id_token", "description")
    raw_id_fields = ("group_id_token",)
    list_select_related = ("group_id_token",)


@admin.register(LocalAuthList)
class LocalAuthListAdmin(admin.ModelAdmin):
    list_display = ("station", "station_version", "pending_version", "last_status", "last_result_at")
    raw_id_fields = ("station",)
    filter_horizontal = ("tokens",)
    list_select_related = ("station",)
    readonly_fields = ("synced_entries", "pending_version", "pending_update_type", "pending_entries")


class TransactionEventInline(ReadOnlyInline, admin.TabularInline):
    model = TransactionEventRecord
    fields = ("seq_no", "event_type", "timestamp", "trigger_reason", "charging_state", "offline", "id_token")
    readonly_fields = fields


# Every field of a transaction is derived from the station's events and samples (and recomputed from them):
# edited by hand it would disagree with them, and deleting it would delete them.
@admin.register(ChargingTransaction)
class ChargingTransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "transaction_id",
        "station",
        "evse_id",
        "id_token",
        "started_at",
        "ended_at",
        "is_active",
        "energy_wh",
    )
    list_filter = ("is_active", "had_offline_events")
    search_fields = ("transaction_id", "id_token", "station__identity")
    date_hierarchy = "started_at"
    raw_id_fields = ("station", "token")
    list_select_related = ("station",)
    inlines = [TransactionEventInline]


@admin.register(TransactionEventRecord)
class TransactionEventRecordAdmin(ReadOnlyAdmin):
    list_display = ("transaction", "seq_no", "event_type", "timestamp", "trigger_reason", "charging_state", "offline")
    list_filter = ("event_type", "offline")  # low-cardinality columns only: a filter lists DISTINCT values
    search_fields = ("transaction__transaction_id", "transaction__station__identity", "id_token")
    list_select_related = ("transaction",)


@admin.register(MeterSample)
class MeterSampleAdmin(ReadOnlyAdmin):
    list_display = ("timestamp", "station", "evse_id", "measurand", "phase", "location", "context", "value", "unit")
    list_filter = ("measurand", "context")
    raw_id_fields = ("station", "transaction")
    list_select_related = ("station",)


# Part of the command audit trail: the request behind a RequestStartTransaction Command.
@admin.register(RemoteStartRequest)
class RemoteStartRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "station", "evse_id", "command", "created_at"]
    list_select_related = ["station", "command"]
    search_fields = ["station__identity"]
    readonly_fields = ["station", "command", "id_token", "evse_id", "created_at"]


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    """Reservations are made and ended through ReserveNow/CancelReservation (dashboard, API): read-only here."""

    list_display = [
        "reservation_id",
        "station",
        "evse_id",
        "connector_type",
        "id_token",
        "expires_at",
        "state",
        "reason",
        "transaction",
    ]
    list_filter = ["state"]
    search_fields = ["station__identity", "id_token"]
    list_select_related = ["station", "transaction"]
    readonly_fields = [f.name for f in Reservation._meta.fields]


@admin.register(CustomerInformationRequest)
class CustomerInformationRequestAdmin(ReadOnlyAdmin):
    """Sent through CustomerInformation (API), answered and reported by the station: read-only here."""

    list_display = ["created_at", "station", "request_id", "report", "clear", "id_token", "state", "parts_received"]
    list_filter = ["state", "report", "clear"]
    search_fields = ["station__identity", "id_token", "customer_identifier"]
    list_select_related = ["station"]
    readonly_fields = [f.name for f in CustomerInformationRequest._meta.fields]


@admin.register(CustomerDataClearance)
class CustomerDataClearanceAdmin(ReadOnlyAdmin):
    """The audit trail of anonymisations (made by the clear service, never by hand)."""

    list_display = ["performed_at", "request", "performed_by", "pseudonym", "counts"]
    list_select_related = ["request", "performed_by"]
    readonly_fields = [f.name for f in CustomerDataClearance._meta.fields]


# --- Tariffs --------------------------------------------------------------------------------------------------


class TariffVersionInline(ReadOnlyInline, admin.TabularInline):
    model = TariffVersion
    fields = ("number", "valid_from", "prices")
    readonly_fields = fields


class TariffForm(forms.ModelForm):
    class Meta:
        model = Tariff
        fields = [
            "name", "currency", "price_per_kwh", "price_per_hour", "idle_price_per_hour", "session_fee",
            "tax_rate_percent", "prices_include_tax", "bands", "is_default", "stations", "token_groups",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        candidate = copy.copy(self.instance)
        for name in ("name", "currency", "tax_rate_percent", "prices_include_tax", "bands", "is_default",
                     "price_per_kwh", "price_per_hour", "idle_price_per_hour", "session_fee"):  # fmt: skip
            if name in data:
                setattr(candidate, name, data[name])
        stations = list(data["stations"]) if "stations" in data else None
        for field, messages in tariff_problems(tariff=candidate, stations=stations).items():
            self.add_error(field if field in self.fields else None, messages)
        return data


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    """Saved through ``tariff_save`` (the API's rules): a price change makes a new version; sessions keep theirs."""

    list_display = (
        "name", "currency", "price_per_kwh", "price_per_hour", "idle_price_per_hour", "session_fee", "is_default",
        "version", "updated_at",
    )  # fmt: skip
    list_filter = ("is_default", "currency")
    search_fields = ("name",)
    filter_horizontal = ("stations", "token_groups")
    readonly_fields = ("version",)
    form = TariffForm
    inlines = [TariffVersionInline]

    def save_model(self, request: Any, obj: Tariff, form: Any, change: bool) -> None:
        self._pending = obj  # saved with its assignments in save_related

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        tariff_save(
            tariff=form.instance,
            stations=list(form.cleaned_data["stations"]),
            token_groups=list(form.cleaned_data["token_groups"]),
        )
        for formset in formsets:  # the read-only versions inline: saves nothing, records that for the history
            self.save_formset(request, form, formset, change=change)


@admin.register(TariffVersion)
class TariffVersionAdmin(ReadOnlyAdmin):
    list_display = ("tariff", "number", "valid_from", "created_at")
    list_select_related = ("tariff",)
