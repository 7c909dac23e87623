"""Handlers for the authorization and transaction CS->CSMS messages (blocks C, E, and MeterValues). Thin."""

from __future__ import annotations

from typing import Any

from csms.ocpp import errors
from csms.ocpp.router import CallContext, handles

from . import services


def _require_non_negative(**values: int | None) -> None:
    # The schemas type these as plain integers; negative ids, counts and sequence numbers are meaningless.
    for name, value in values.items():
        if value is not None and value < 0:
            raise errors.PropertyConstraintViolation(
                f"{name} must be 0 or more, got {value}", {"path": name, "keyword": "minimum"}
            )


@handles("Authorize")
def authorize(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    result = services.authorize(
        station_id=ctx.station_id,
        id_token=payload["idToken"],
        certificate_presented=bool(payload.get("iso15118CertificateHashData") or payload.get("certificate")),
    )
    response: dict[str, Any] = {"idTokenInfo": result.id_token_info}
    if result.certificate_status is not None:
        response["certificateStatus"] = result.certificate_status
    return response


@handles("TransactionEvent")
def transaction_event(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    evse = payload.get("evse") or {}
    info = payload["transactionInfo"]
    _require_non_negative(
        seqNo=payload["seqNo"],
        evseId=evse.get("id"),
        connectorId=evse.get("connectorId"),
        numberOfPhasesUsed=payload.get("numberOfPhasesUsed"),
        timeSpentCharging=info.get("timeSpentCharging"),
    )
    result = services.transaction_event_apply(station_id=ctx.station_id, event=payload)
    return services.transaction_event_response(result, payload["eventType"])


@handles("MeterValues")
def meter_values(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    _require_non_negative(evseId=payload["evseId"])
    services.meter_values_record(
        station_id=ctx.station_id, evse_id=payload["evseId"], meter_values=payload["meterValue"]
    )
    return {}
