"""Handlers for the authorization, transaction, reservation and customer-information CS->CSMS messages (blocks C,
E, H, MeterValues, N CustomerInformation). Thin."""

from __future__ import annotations

from typing import Any

from csms.ocpp.checks import INT32_MAX, require_range, require_timestamps
from csms.ocpp.router import CallContext, handles

from . import customers, reservations, services


@handles("Authorize")
def authorize(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    result = services.authorize(
        station_id=ctx.station_id,
        id_token=payload["idToken"],
        certificate_hash_data=payload.get("iso15118CertificateHashData"),
        certificate=payload.get("certificate"),
    )
    response: dict[str, Any] = {"idTokenInfo": result.id_token_info}
    if result.certificate_status is not None:
        response["certificateStatus"] = result.certificate_status
    return response


@handles("TransactionEvent")
def transaction_event(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    evse = payload.get("evse") or {}
    info = payload["transactionInfo"]
    require_range(
        0,
        seqNo=payload["seqNo"],
        evseId=evse.get("id"),
        connectorId=evse.get("connectorId"),
        numberOfPhasesUsed=payload.get("numberOfPhasesUsed"),
        timeSpentCharging=info.get("timeSpentCharging"),
    )
    require_range(
        -INT32_MAX,
        remoteStartId=info.get("remoteStartId"),
        reservationId=payload.get("reservationId"),
        cableMaxCurrent=payload.get("cableMaxCurrent"),
    )
    require_timestamps(payload)
    result = services.transaction_event_apply(station_id=ctx.station_id, event=payload)
    return services.transaction_event_response(result, payload["eventType"])


@handles("MeterValues")
def meter_values(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_range(0, evseId=payload["evseId"])
    require_timestamps(payload)
    services.meter_values_record(
        station_id=ctx.station_id, evse_id=payload["evseId"], meter_values=payload["meterValue"]
    )
    return {}


@handles("ReservationStatusUpdate")
def reservation_status_update(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    reservations.reservation_status_update(
        station_id=ctx.station_id, reservation_id=payload["reservationId"], status=payload["reservationUpdateStatus"]
    )
    return {}


@handles("NotifyCustomerInformation")
def notify_customer_information(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_range(0, seqNo=payload["seqNo"])
    customers.customer_information_part_record(
        station_id=ctx.station_id,
        request_id=payload["requestId"],
        seq_no=payload["seqNo"],
        tbc=payload.get("tbc", False),
        data=payload["data"],
        payload=payload,
    )
    return {}
