"""What the station-scoped REST endpoints share: the station from the URL, command validation errors as 400s, and
the "ask the station for a report" view (GetDisplayMessages, GetChargingProfiles, ...): ``GET`` lists the
station's requests of one kind, ``POST`` sends one (201 with the request; the station's report parts complete it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from django.db.models import Model, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from stations import commands
from stations.models import ChargingStation


class StationScoped:
    """A view under ``stations/<identity>/``: its station, 404 when unknown."""

    kwargs: dict[str, Any]

    def get_station(self) -> ChargingStation:
        return get_object_or_404(ChargingStation, identity=self.kwargs["identity"])


def command_invalid(exc: commands.CommandValidationError) -> NoReturn:
    """A command the pipeline refused (schema, domain checks): 400 with its violations; nothing was sent."""
    raise ValidationError(exc.as_dict()) from exc


class StationReportRequestsView(StationScoped, generics.ListCreateAPIView):
    """Subclasses name the report model (its rows have a ``station``), the serializer of its rows (
    ``serializer_class``), the serializer of the request's parameters and the domain service that sends it
    (``send(station=, user=, **parameters)`` returning the report row)."""

    report_model: type[Model]
    parameters_serializer_class: type[serializers.Serializer]
    send: Callable[..., Model]
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.report_model._default_manager.none()
        return self.report_model._default_manager.filter(station=self.get_station())

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        params = self.parameters_serializer_class(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            # The service is a plain function kept on the class: take it from the type, unbound.
            report = type(self).send(station=self.get_station(), user=request.user, **params.validated_data)
        except commands.CommandValidationError as exc:
            command_invalid(exc)
        return Response(self.get_serializer(report).data, status=status.HTTP_201_CREATED)
