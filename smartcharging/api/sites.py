"""``/api/v1/sites/``: sites (station groups) with their capacity, strategy, members and live load."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.db import transaction
from django.urls import include, path
from drf_spectacular.utils import extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.routers import SimpleRouter

from csms.api_permissions import ModelPermissions

from .. import sites
from ..models import Site, SiteStrategy


class SiteLoadEvseSerializer(serializers.Serializer):
    station = serializers.CharField()
    evse_id = serializers.IntegerField()
    transaction_id = serializers.CharField()
    limit_a = serializers.DecimalField(max_digits=6, decimal_places=1, help_text="The allocation per phase.")
    accepted_limit_a = serializers.DecimalField(
        max_digits=6, decimal_places=1, allow_null=True, help_text="The TxProfile limit the station accepted."
    )
    measured_a = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, help_text="Current.Import per phase (L1, L2, L3)."
    )
    reason = serializers.CharField()


class SiteLoadSerializer(serializers.Serializer):
    capacity_a = serializers.ListField(child=serializers.FloatField(), help_text="Per grid phase.")
    allocated_a = serializers.ListField(child=serializers.FloatField(), help_text="Per grid phase.")
    measured_a = serializers.ListField(child=serializers.FloatField(), help_text="Per grid phase.")
    evses = SiteLoadEvseSerializer(many=True)


class SiteSerializer(serializers.ModelSerializer):
    stations = serializers.ListField(
        child=serializers.CharField(max_length=48),
        required=False,
        max_length=10_000,
        help_text="Identities of the member stations (a station is in at most one site); replaces the members.",
    )
    capacity_a = serializers.DecimalField(
        max_digits=8, decimal_places=1, min_value=Decimal("0"), required=False, allow_null=True,
        help_text="Capacity per phase in A; give this or capacity_w (giving one clears the other).",
    )  # fmt: skip
    capacity_w = serializers.DecimalField(
        max_digits=10, decimal_places=0, min_value=Decimal("0"), required=False, allow_null=True,
        help_text="Capacity over all phases in W, spread over the phases at the site's voltage.",
    )  # fmt: skip
    strategy = serializers.ChoiceField(choices=SiteStrategy.choices, default=SiteStrategy.EQUAL_SHARE)
    min_current_a = serializers.DecimalField(
        max_digits=5, decimal_places=1, min_value=Decimal("0"), required=False, allow_null=True
    )
    fallback_limit_a = serializers.DecimalField(
        max_digits=5, decimal_places=1, min_value=Decimal("0"), required=False, allow_null=True
    )
    voltage_v = serializers.DecimalField(max_digits=5, decimal_places=1, min_value=Decimal("1"), required=False)
    load = serializers.SerializerMethodField(help_text="Live load: capacity, allocated and measured per phase.")

    class Meta:
        model = Site
        fields = [
            "id", "name", "capacity_a", "capacity_w", "phases", "voltage_v", "strategy", "min_current_a",
            "fallback_limit_a", "time_zone", "stations", "load", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]

    @extend_schema_field(SiteLoadSerializer)
    def get_load(self, site: Site) -> dict[str, Any]:
        return SiteLoadSerializer(sites.site_load(site)).data

    def to_representation(self, instance: Site) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["stations"] = sorted(m.station.identity for m in instance.members.all())
        return data

    def validate_stations(self, value: list[str]) -> list[str]:
        try:
            sites.site_stations_check(site=self.instance, identities=value)
        except sites.SiteError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "capacity_a" in attrs and attrs["capacity_a"] is not None:
            attrs["capacity_w"] = None
        elif "capacity_w" in attrs and attrs["capacity_w"] is not None:
            attrs["capacity_a"] = None
        instance = self.instance
        capacity_a = attrs.get("capacity_a", instance.capacity_a if instance else None)
        capacity_w = attrs.get("capacity_w", instance.capacity_w if instance else None)
        if capacity_a is None and capacity_w is None:
            raise serializers.ValidationError({"capacity_a": "Give capacity_a (A per phase) or capacity_w (W)."})
        return attrs

    def _save(self, site: Site | None, attrs: dict[str, Any]) -> Site:
        identities = attrs.pop("stations", None)
        with transaction.atomic():
            if site is None:
                site = Site.objects.create(**attrs)
            else:
                for name, value in attrs.items():
                    setattr(site, name, value)
                site.save()
                sites.site_changed(site=site, reason="site settings changed")
            if identities is not None:
                try:
                    sites.site_set_stations(site=site, identities=identities)
                except sites.SiteError as exc:
                    raise serializers.ValidationError({"stations": str(exc)}) from exc
        return site

    def create(self, validated_data: dict[str, Any]) -> Site:
        return self._save(None, validated_data)

    def update(self, instance: Site, validated_data: dict[str, Any]) -> Site:
        return self._save(instance, validated_data)


class SiteFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="members__station__identity", help_text="A member's identity.")

    class Meta:
        model = Site
        fields = ["name", "strategy", "station"]


class SiteViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Sites: GET (list, detail), POST, PATCH. Changing capacity, strategy or members recomputes the allocation."""

    queryset = Site.objects.prefetch_related("members__station").order_by("name")
    permission_classes = [ModelPermissions]
    serializer_class = SiteSerializer
    filterset_class = SiteFilter
    http_method_names = ["get", "post", "patch", "head", "options"]


router = SimpleRouter()
router.register("sites", SiteViewSet, basename="site")
urlpatterns = [path("", include(router.urls))]
