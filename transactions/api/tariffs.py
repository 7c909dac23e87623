"""REST endpoints of tariffs (block I): list, read, create and change; each change to a price makes a new version."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db import IntegrityError
from django.db.models.functions import Lower
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.serializers import BaseSerializer

from csms.api_permissions import ModelPermissions
from smartcharging.models import Site
from stations.models import ChargingStation
from transactions import tariffs
from transactions.models import IdToken, Tariff


def _money(help_text: str) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=6, min_value=0, help_text=help_text)


class _TokenGroupsField(serializers.ListField):
    """Written as id_token strings (resolved by the serializer), read back as the tokens' id_token."""

    def to_representation(self, data: Any) -> list[str]:
        return [token.id_token for token in data.all()]


class TariffSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(min_length=3, max_length=3, help_text="ISO 4217, e.g. EUR")
    price_per_kwh = _money("decimal string, per kWh")
    price_per_hour = _money("decimal string, per hour of charging (state Charging)")
    idle_price_per_hour = _money("decimal string, per hour idle (SuspendedEV, EVConnected after charging)")
    session_fee = _money("decimal string, once per session")
    tax_rate_percent = serializers.DecimalField(
        max_digits=7, decimal_places=4, min_value=0, max_value=100, required=False, help_text='e.g. "19.0000"'
    )
    stations = serializers.SlugRelatedField(
        slug_field="identity", many=True, required=False, queryset=ChargingStation.objects.all(),
        help_text="identities of the stations it applies to",
    )  # fmt: skip
    sites = serializers.SlugRelatedField(
        slug_field="name", many=True, required=False, queryset=Site.objects.all(),
        help_text="names of the sites whose member stations without a tariff of their own it applies to",
    )  # fmt: skip
    token_groups = _TokenGroupsField(
        child=serializers.CharField(max_length=36),
        required=False,
        help_text="id_token of the group tokens (or tokens) for which it overrides the station's tariff",
    )
    bands = serializers.JSONField(
        required=False,
        help_text='[{"start": "HH:MM", "end": "HH:MM", "price_per_kwh"?, "price_per_hour"?, "idle_price_per_hour"?}]',
    )
    is_default = serializers.BooleanField(
        required=False,
        help_text="applies where no station or token-group tariff does; takes the role from the previous default",
    )
    version = serializers.IntegerField(read_only=True, help_text="current version (sessions keep theirs)")

    class Meta:
        model = Tariff
        fields = [
            "id",
            "name",
            "currency",
            "price_per_kwh",
            "price_per_hour",
            "idle_price_per_hour",
            "session_fee",
            "tax_rate_percent",
            "prices_include_tax",
            "bands",
            "stations",
            "sites",
            "token_groups",
            "is_default",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def validate_currency(self, value: str) -> str:
        if not tariffs.CURRENCY_CODE.match(value.upper()):
            raise serializers.ValidationError("an ISO 4217 code of three letters, e.g. EUR")
        return value.upper()

    def validate_token_groups(self, value: list[str]) -> list[IdToken]:
        wanted = {v.lower() for v in value}
        found: dict[str, list[IdToken]] = {}
        for token in IdToken.objects.alias(lower=Lower("id_token")).filter(lower__in=wanted):
            found.setdefault(token.id_token.lower(), []).append(token)
        errors = [f"{v}: unknown id token" for v in value if v.lower() not in found]
        errors += [f"{v}: several id tokens of that name" for v in value if len(found.get(v.lower(), [])) > 1]
        if errors:
            raise serializers.ValidationError(errors)
        return [found[v.lower()][0] for v in dict.fromkeys(value)]

    def _save(self, tariff: Tariff, data: dict[str, Any]) -> Tariff:
        stations = data.pop("stations", None)
        groups = data.pop("token_groups", None)
        sites = data.pop("sites", None)
        for key, value in data.items():
            setattr(tariff, key, value)
        try:
            return tariffs.tariff_save(tariff=tariff, stations=stations, token_groups=groups, sites=sites)
        except tariffs.TariffError as exc:
            raise ValidationError(exc.errors) from exc
        except IntegrityError as exc:  # a concurrent request took the name (or the default role) first
            raise ValidationError({"name": ["a tariff with this name exists already"]}) from exc

    def create(self, validated_data: dict[str, Any]) -> Tariff:
        return self._save(Tariff(), validated_data)

    def update(self, instance: Tariff, validated_data: dict[str, Any]) -> Tariff:
        return self._save(instance, validated_data)


class TariffFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="stations__identity", help_text="station identity")

    class Meta:
        model = Tariff
        fields = ["station", "currency", "is_default"]


class TariffViewSet(viewsets.ModelViewSet):
    """Tariffs. Reading needs ``transactions.view_tariff`` (billing, operator); POST/PATCH ``add_tariff`` /
    ``change_tariff`` (admins). A change to a price, the currency, the tax or the bands makes a new version:
    sessions under way keep the version they started with."""

    permission_classes = [ModelPermissions]
    serializer_class = TariffSerializer
    filterset_class = TariffFilter
    filter_backends = [DjangoFilterBackend]
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return Tariff.objects.prefetch_related("stations", "sites", "token_groups").order_by("name")

    def perform_create(self, serializer: BaseSerializer[Tariff]) -> None:
        serializer.save()

    def perform_update(self, serializer: BaseSerializer[Tariff]) -> None:
        serializer.save()
