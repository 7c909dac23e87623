"""REST endpoints for transactions (read-only), CDR export, id tokens and reservations. Queries come from
``selectors``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import django_filters
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import IntegrityError
from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from csms.api_filters import UtcIsoDateTimeFilter, strict_boolean_filter
from csms.api_permissions import ModelPermissions
from stations.commands import CommandValidationError
from transactions import cdr, id_token_import, reservations, selectors
from transactions.models import ChargingTransaction, IdToken, IdTokenType, Reservation, ReservationState

from .serializers import (
    CdrQuerySerializer,
    IdTokenImportResultSerializer,
    IdTokenImportSerializer,
    IdTokenSerializer,
    MeterValueSerializer,
    ReservationCreateSerializer,
    ReservationSerializer,
    TransactionEventSerializer,
    TransactionSerializer,
)


class TransactionFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="station__identity", help_text="station identity")
    active = strict_boolean_filter(field_name="is_active")
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    id_token = django_filters.CharFilter(field_name="id_token", lookup_expr="iexact")

    class Meta:
        model = ChargingTransaction
        fields = ["station", "active", "started_after", "started_before", "id_token"]


class TransactionViewSet(viewsets.ReadOnlyModelViewSet):
    """Charging sessions (read-only; needs ``transactions.view_chargingtransaction``)."""

    permission_classes = [ModelPermissions]
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["started_at", "ended_at", "energy_wh", "id"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return selectors.transactions_all()

    @extend_schema(responses=MeterValueSerializer(many=True), filters=False)
    @action(detail=True, url_path="meter-values", filterset_class=None, ordering_fields=None)
    def meter_values(self, request: Request, pk: str) -> Response:
        """The session's sampled values in time order (base units: Wh, W, A, V, ...)."""
        txn = self.get_object()
        page = self.paginate_queryset(selectors.transaction_time_series(transaction_pk=txn.pk))
        return self.get_paginated_response(MeterValueSerializer(page, many=True).data)

    @extend_schema(responses=TransactionEventSerializer(many=True), filters=False)
    @action(detail=True, filterset_class=None, ordering_fields=None)
    def events(self, request: Request, pk: str) -> Response:
        """The session's TransactionEvents as received, by seqNo."""
        txn = self.get_object()
        page = self.paginate_queryset(selectors.transaction_events(transaction_pk=txn.pk))
        return self.get_paginated_response(TransactionEventSerializer(page, many=True).data)


def _stream(request: Any, chunks: Iterator[str]) -> Any:
    """A sync iterator under WSGI; under ASGI an async one pulling each block in the request's DB thread (Django
    would otherwise read a sync iterator to the end before sending anything)."""
    if isinstance(getattr(request, "_request", request), ASGIRequest):

        async def blocks() -> AsyncIterator[str]:
            pull = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
            while (block := await pull()) is not None:
                yield block

        return blocks()
    return chunks


class _IgnoreAccept(BaseContentNegotiation):
    """The export answers CSV/JSON by URL whatever ``Accept`` says; errors are JSON."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class CdrExportView(APIView):
    """CDRs: ended sessions whose ``ended_at`` is in [``start``, ``end``), streamed (any period size)."""

    permission_classes = [ModelPermissions]
    queryset = ChargingTransaction.objects.none()  # for ModelPermissions: transactions.view_chargingtransaction
    content_negotiation_class = _IgnoreAccept
    renderer_classes = [JSONRenderer]
    fmt = "csv"

    @extend_schema(
        parameters=[CdrQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.ANY, description="JSON array of CDRs"),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = CdrQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        since, until = params.validated_data["start"], params.validated_data["end"]
        records = cdr.cdr_records(since=since, until=until)
        if self.fmt == "json":
            chunks, content_type = cdr.json_chunks(records), "application/json"
        else:
            chunks, content_type = cdr.csv_chunks(records), "text/csv; charset=utf-8"
        response = StreamingHttpResponse(_stream(request, chunks), content_type=content_type)
        name = f"cdr-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.{self.fmt}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class IdTokenFilter(django_filters.FilterSet):
    id_token = django_filters.CharFilter(lookup_expr="iexact")
    type = django_filters.ChoiceFilter(choices=IdTokenType.choices)
    group_id_token = django_filters.CharFilter(field_name="group_id_token__id_token", lookup_expr="iexact")
    search = django_filters.CharFilter(field_name="id_token", lookup_expr="icontains")

    class Meta:
        model = IdToken
        fields = ["id_token", "type", "status", "group_id_token", "search"]


class IdTokenViewSet(viewsets.ModelViewSet):
    """Id tokens. Reading needs ``transactions.view_idtoken``; changes need add/change/delete (the ``operator``
    group has them)."""

    permission_classes = [ModelPermissions]
    serializer_class = IdTokenSerializer
    filterset_class = IdTokenFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["id_token", "created_at", "updated_at", "expires_at"]
    ordering = ["id_token", "type"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return IdToken.objects.select_related("group_id_token")

    def perform_create(self, serializer: BaseSerializer[IdToken]) -> None:
        self._save(serializer)

    def perform_update(self, serializer: BaseSerializer[IdToken]) -> None:
        self._save(serializer)

    @staticmethod
    def _save(serializer: BaseSerializer[IdToken]) -> None:
        try:
            serializer.save()
        except IntegrityError as exc:  # a concurrent request stored the same token first
            raise ValidationError({"id_token": ["exists already"]}) from exc

    @extend_schema(
        request={"multipart/form-data": IdTokenImportSerializer},
        responses={
            200: IdTokenImportResultSerializer,
            400: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Field errors (no file), or {detail, errors: [{row, errors: {column: message}}]}",
                examples=[],
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_csv(self, request: Request) -> Response:
        """CSV upload (``file``), all or nothing: any bad row stores nothing and every row's errors are listed."""
        params = IdTokenImportSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            text = params.validated_data["file"].read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": ["not UTF-8 text"]}) from None
        result = id_token_import.import_csv(text)
        if not result.ok:
            body = {"detail": "nothing imported: fix the rows listed", "errors": result.errors}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response({"created": result.created, "updated": result.updated})


class ReservationFilter(django_filters.FilterSet):
    station = django_filters.CharFilter(field_name="station__identity", help_text="station identity")
    state = django_filters.ChoiceFilter(choices=ReservationState.choices)

    class Meta:
        model = Reservation
        fields = ["station", "state"]


class ReservationViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Reservations. ``POST`` sends ReserveNow (201, state ``requested``; the station's answer moves it on);
    ``DELETE`` sends CancelReservation (202; ``cancelled`` once the station accepts). Reading needs
    ``transactions.view_reservation``, POST ``add_reservation``, DELETE ``delete_reservation`` (operators)."""

    permission_classes = [ModelPermissions]
    serializer_class = ReservationSerializer
    filterset_class = ReservationFilter
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    ordering_fields = ["created_at", "expires_at", "id"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> Any:
        return selectors.reservations_all()

    @extend_schema(request=ReservationCreateSerializer, responses={201: ReservationSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = ReservationCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        try:
            reservation = reservations.reservation_create(
                station=data["station"],
                id_token=data["id_token"],
                id_token_type=data["id_token_type"],
                expires_at=data["expires_at"],
                evse_id=data.get("evse_id"),
                connector_type=data.get("connector_type", ""),
                group_id_token=data.get("group_id_token", ""),
                group_id_token_type=data.get("group_id_token_type", ""),
                user=request.user,
            )
        except CommandValidationError as exc:
            raise ValidationError(exc.as_dict()) from exc
        return Response(
            ReservationSerializer(selectors.reservation_detail(pk=reservation.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses={202: ReservationSerializer, 409: OpenApiResponse(description="already ended")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        reservation = self.get_object()
        try:
            reservations.reservation_cancel(reservation=reservation, user=request.user)
        except reservations.ReservationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        reservation = selectors.reservation_detail(pk=reservation.pk)
        return Response(ReservationSerializer(reservation).data, status=status.HTTP_202_ACCEPTED)
