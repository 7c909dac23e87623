"""REST endpoints of CustomerInformation requests (block N): list, read (with the assembled data) and send."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import HttpResponse
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from csms.api_permissions import ModelPermissions
from stations.commands import CommandValidationError
from stations.models import ChargingStation
from transactions import customers
from transactions.models import CustomerInformationRequest, CustomerInformationState, IdTokenType

from .views import _IgnoreAccept as IgnoreAccept


class CertificateHashDataSerializer(serializers.Serializer):
    hash_algorithm = serializers.ChoiceField(choices=["SHA256", "SHA384", "SHA512"])
    issuer_name_hash = serializers.CharField(max_length=128)
    issuer_key_hash = serializers.CharField(max_length=128)
    serial_number = serializers.CharField(max_length=40)


class CustomerDataClearanceSerializer(serializers.Serializer):
    performed_at = serializers.DateTimeField()
    performed_by = serializers.CharField(source="performed_by.get_username", default=None, allow_null=True)
    pseudonym = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    kept = serializers.CharField()


class CustomerInformationSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    requested_by = serializers.CharField(
        source="requested_by.get_username", read_only=True, default=None, allow_null=True
    )
    id_token_type = serializers.CharField(read_only=True, help_text="empty when no id token was given")
    download_url = serializers.SerializerMethodField()
    clearances = CustomerDataClearanceSerializer(many=True, read_only=True)

    class Meta:
        model = CustomerInformationRequest
        fields = [
            "id",
            "station",
            "request_id",
            "report",
            "clear",
            "id_token",
            "id_token_type",
            "customer_identifier",
            "customer_certificate",
            "state",
            "station_status",
            "status_info",
            "parts_received",
            "data",
            "download_url",
            "clearances",
            "command",
            "requested_by",
            "created_at",
            "updated_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_download_url(self, obj: CustomerInformationRequest) -> str:
        return reverse("customer-information-download", args=[obj.pk])


class CustomerInformationCreateSerializer(serializers.Serializer):
    station = serializers.SlugRelatedField(slug_field="identity", queryset=ChargingStation.objects.all())
    report = serializers.BooleanField(default=True)
    clear = serializers.BooleanField(default=False)
    id_token = serializers.CharField(max_length=36, required=False, default="")
    id_token_type = serializers.ChoiceField(choices=IdTokenType.choices, default=IdTokenType.CENTRAL)
    customer_identifier = serializers.CharField(max_length=64, required=False, default="")
    customer_certificate = CertificateHashDataSerializer(required=False, allow_null=True, default=None)


class CustomerInformationFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="station__identity", help_text="station identity")
    state = django_filters.ChoiceFilter(choices=CustomerInformationState.choices)

    class Meta:
        model = CustomerInformationRequest
        fields = ["station", "state", "clear"]


def _certificate(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    return {
        "hashAlgorithm": data["hash_algorithm"],
        "issuerNameHash": data["issuer_name_hash"],
        "issuerKeyHash": data["issuer_key_hash"],
        "serialNumber": data["serial_number"],
    }


class CustomerInformationViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """CustomerInformation requests. ``POST`` sends one (201, ``requested``); the answer moves it on
    (``accepted``/``rejected``/``invalid``), NotifyCustomerInformation parts fill ``data`` (``receiving``, then
    ``complete``). An accepted ``clear`` also anonymises the CSMS's records of the id token (``clearances``).
    Reading needs ``transactions.view_customerinformationrequest`` (billing), POST
    ``add_customerinformationrequest`` (operators)."""

    permission_classes = [ModelPermissions]
    serializer_class = CustomerInformationSerializer
    filterset_class = CustomerInformationFilter
    filter_backends = [DjangoFilterBackend]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return CustomerInformationRequest.objects.select_related("station", "requested_by").prefetch_related(
            "clearances__performed_by"
        )

    @extend_schema(request=CustomerInformationCreateSerializer, responses={201: CustomerInformationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = CustomerInformationCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            created = customers.customer_information_request(
                station=data["station"],
                report=data["report"],
                clear=data["clear"],
                id_token=data["id_token"],
                id_token_type=data["id_token_type"],
                customer_identifier=data["customer_identifier"],
                customer_certificate=_certificate(data["customer_certificate"]),
                user=request.user,
            )
        except CommandValidationError as exc:
            raise ValidationError(exc.as_dict()) from exc
        except customers.CustomerInformationError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        shown = self.get_queryset().get(pk=created.pk)
        return Response(CustomerInformationSerializer(shown).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.STR, description="the assembled data, text/plain")})
    @action(detail=True, url_path="data.txt", url_name="download", content_negotiation_class=IgnoreAccept)
    def download(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The assembled NotifyCustomerInformation data as a text file (same permission as reading)."""
        obj = self.get_object()
        response = HttpResponse(obj.data, content_type="text/plain; charset=utf-8")
        filename = f"customer-information-{obj.pk}.txt"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
