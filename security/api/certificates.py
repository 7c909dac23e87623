"""REST endpoints of certificates: a station's installed certificates (GetInstalledCertificateIds, InstallCertificate,
DeleteCertificate), the certificates the CSMS signed for it (and revoking one), the trusted Plug & Charge roots.

Reading needs ``stations.view_chargingstation`` (billing, operator); install, delete and refresh send commands:
``stations.add_command`` (operator); revoking and the trusted roots are for admins.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from csms.api_permissions import AdminOnly, is_admin
from security import certificates
from security.models import (
    CertificateRequest,
    InstalledCertificate,
    InstalledCertificateUse,
    TrustedRootCertificate,
    TrustedRootUse,
)
from stations.api.serializers import CommandSerializer
from stations.commands import CommandValidationError
from stations.models import ChargingStation

INSTALLABLE = [c for c in InstalledCertificateUse.values if c != InstalledCertificateUse.V2G_CHAIN]


class CanReadOrSendCertificateCommands(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if is_admin(user):
            return True
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("stations.view_chargingstation")
        return user.has_perm("stations.add_command")


class InstalledCertificateSerializer(serializers.ModelSerializer):
    class Meta:
        model = InstalledCertificate
        fields = [
            "id",
            "certificate_type",
            "hash_algorithm",
            "issuer_name_hash",
            "issuer_key_hash",
            "serial_number",
            "parent",
            "source",
            "subject",
            "not_after",
            "updated_at",
        ]
        read_only_fields = fields


class InstallSerializer(serializers.Serializer):
    certificate_type = serializers.ChoiceField(choices=INSTALLABLE)
    certificate = serializers.CharField(max_length=5500, help_text="PEM-encoded X.509 certificate")


class RefreshSerializer(serializers.Serializer):
    certificate_type = serializers.ListField(
        child=serializers.ChoiceField(choices=InstalledCertificateUse.values), required=False, allow_empty=False
    )


class CertificateRequestSerializer(serializers.ModelSerializer):
    station = serializers.CharField(source="station.identity", read_only=True)
    revoked_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CertificateRequest
        fields = [
            "id",
            "station",
            "certificate_type",
            "state",
            "reason",
            "serial_number",
            "subject",
            "not_before",
            "not_after",
            "certificate_pem",
            "command",
            "station_status",
            "renewal_requested_at",
            "revoked_at",
            "revoked_by",
            "created_at",
        ]
        read_only_fields = fields


class TrustedRootSerializer(serializers.ModelSerializer):
    certificate_type = serializers.ChoiceField(choices=TrustedRootUse.choices)

    class Meta:
        model = TrustedRootCertificate
        fields = ["id", "certificate_type", "name", "pem", "subject", "fingerprint_sha256", "not_after", "created_at"]
        read_only_fields = ["subject", "fingerprint_sha256", "not_after", "created_at"]

    def create(self, validated_data: dict[str, Any]) -> TrustedRootCertificate:
        try:
            return certificates.trusted_root_add(**validated_data)
        except ValueError as exc:
            raise ValidationError({"pem": [str(exc).removeprefix("pem: ")]}) from exc


def _station(identity: str) -> ChargingStation:
    return get_object_or_404(ChargingStation, identity=identity)


def _command_response(command: Any) -> Response:
    return Response(CommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)


class StationCertificateList(generics.ListAPIView):
    """GET: the station's installed certificates as last reported (GetInstalledCertificateIds) or installed by the
    CSMS. POST ``{"certificate_type", "certificate"}`` sends InstallCertificate (202 with the command; the
    certificate is listed once the station accepts)."""

    permission_classes = [CanReadOrSendCertificateCommands]
    serializer_class = InstalledCertificateSerializer

    def get_queryset(self) -> QuerySet[InstalledCertificate]:
        return InstalledCertificate.objects.filter(station__identity=self.kwargs.get("identity", "")).order_by(
            "certificate_type", "id"
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _station(self.kwargs["identity"])
        return super().list(request, *args, **kwargs)

    @extend_schema(request=InstallSerializer, responses={202: CommandSerializer})
    def post(self, request: Request, identity: str) -> Response:
        station = _station(identity)
        body = InstallSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            command = certificates.certificate_install(
                station=station,
                certificate_type=body.validated_data["certificate_type"],
                pem=body.validated_data["certificate"],
                user=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"certificate": [str(exc).removeprefix("certificate: ")]}) from exc
        return _command_response(command)


class StationCertificateDelete(APIView):
    permission_classes = [CanReadOrSendCertificateCommands]

    @extend_schema(request=None, responses={202: CommandSerializer})
    def delete(self, request: Request, identity: str, pk: int) -> Response:
        """Send DeleteCertificate for this certificate (202 with the command; it leaves the list once the station
        accepts)."""
        station = _station(identity)
        get_object_or_404(InstalledCertificate, pk=pk, station=station)
        return _command_response(certificates.certificate_delete(station=station, installed_id=pk, user=request.user))


class StationCertificateRefresh(APIView):
    permission_classes = [CanReadOrSendCertificateCommands]

    @extend_schema(request=RefreshSerializer, responses={202: CommandSerializer})
    def post(self, request: Request, identity: str) -> Response:
        """Send GetInstalledCertificateIds (``certificate_type``: the types to ask for; all when left out); the
        answer replaces the listed certificates of those types."""
        station = _station(identity)
        body = RefreshSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        from stations.commands import helpers

        try:
            command = helpers.get_installed_certificate_ids(
                station, certificate_type=body.validated_data.get("certificate_type"), user=request.user
            )
        except CommandValidationError as exc:
            return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        return _command_response(command)


class StationCertificateRequestList(generics.ListAPIView):
    """The station's SignCertificate requests: rejected CSRs with the reason, and the certificates the CSMS issued
    (state, expiry, renewal, revocation)."""

    permission_classes = [CanReadOrSendCertificateCommands]
    serializer_class = CertificateRequestSerializer

    def get_queryset(self) -> QuerySet[CertificateRequest]:
        return (
            CertificateRequest.objects.filter(station__identity=self.kwargs.get("identity", ""))
            .select_related("station", "revoked_by")
            .order_by("-created_at", "-id")
        )

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        _station(self.kwargs["identity"])
        return super().list(request, *args, **kwargs)


class CertificateRevoke(APIView):
    permission_classes = [AdminOnly]

    @extend_schema(request=None, responses={200: CertificateRequestSerializer})
    def post(self, request: Request, identity: str, pk: int) -> Response:
        """Revoke a station certificate the CSMS's CA issued: it is listed in the CRL (CSMS_CA_CRL_PATH) at once.
        409 when it is already revoked or no certificate was issued."""
        row = get_object_or_404(CertificateRequest, pk=pk, station__identity=identity)
        if not certificates.certificate_revoke(request_id=row.pk, user=request.user):
            return Response({"detail": "nothing to revoke: already revoked or never issued"}, status=409)
        row.refresh_from_db()
        return Response(CertificateRequestSerializer(row).data)


class TrustedRootList(generics.ListCreateAPIView):
    """Plug & Charge roots the operator trusts (V2GRootCertificate, MORootCertificate): Authorize checks contract
    certificates against them. POST ``{"certificate_type", "pem", "name"?}``."""

    permission_classes = [AdminOnly]
    serializer_class = TrustedRootSerializer
    queryset = TrustedRootCertificate.objects.order_by("certificate_type", "id")


class TrustedRootDetail(generics.RetrieveDestroyAPIView):
    permission_classes = [AdminOnly]
    serializer_class = TrustedRootSerializer
    queryset = TrustedRootCertificate.objects.all()
