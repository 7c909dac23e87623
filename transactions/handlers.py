"""Handlers for the authorization and transaction CS->CSMS messages (blocks C, E, and MeterValues). Thin."""

from __future__ import annotations

from typing import Any

from csms.ocpp import errors
from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import services

INT32_MAX = 2**31 - 1


def _require_range(minimum: int, **values: int | None) -> None:
    # The schemas type these as unbounded integers; negative ids, counts and sequence numbers are meaningless and
    # values beyond 32 bits fit no column (a DB error would become an InternalError the station retries forever).
    for name, value in values.items():
        if value is None:
            continue
        if value < minimum:
            raise errors.PropertyConstraintViolation(
                f"{name} must be {minimum} or more, got {value}", {"path": name, "keyword": "minimum"}
            )
        if value > INT32_MAX:
            raise errors.PropertyConstraintViolation(
                f"{name} must be at most {INT32_MAX}, got {value}", {"path": name, "keyword": "maximum"}
            )


def _require_timestamps(payload: dict[str, Any]) -> None:
    # Lenient stations get badly formatted date-times past the schema; one we cannot read at all is refused here
    # (a PropertyConstraintViolation) instead of failing later as an InternalError the station would retry.
    paths = [("timestamp", payload.get("timestamp"))]
    paths += [(f"meterValue/{i}/timestamp", mv["timestamp"]) for i, mv in enumerate(payload.get("meterValue") or [])]
    for path, value in paths:
        if value is None:
            continue
        try:
            parse_ocpp(value)
        except ValueError:
            raise errors.PropertyConstraintViolation(
                f"{path}: {value[:40]!r} is not a date-time", {"path": path, "keyword": "format"}
            ) from None


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
    _require_range(
        0,
        seqNo=payload["seqNo"],
        evseId=evse.get("id"),
        connectorId=evse.get("connectorId"),
        numberOfPhasesUsed=payload.get("numberOfPhasesUsed"),
        timeSpentCharging=info.get("timeSpentCharging"),
    )
    _require_range(
        -INT32_MAX,
        remoteStartId=info.get("remoteStartId"),
        reservationId=payload.get("reservationId"),
        cableMaxCurrent=payload.get("cableMaxCurrent"),
    )
    _require_timestamps(payload)
    result = services.transaction_event_apply(station_id=ctx.station_id, event=payload)
    return services.transaction_event_response(result, payload["eventType"])


@handles("MeterValues")
def meter_values(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    _require_range(0, evseId=payload["evseId"])
    _require_timestamps(payload)
    services.meter_values_record(
        station_id=ctx.station_id, evse_id=payload["evseId"], meter_values=payload["meterValue"]
    )
    return {}
