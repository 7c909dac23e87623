"""Handlers of the security block's CS->CSMS messages. Thin: parse, one service call, answer."""

from __future__ import annotations

from typing import Any

from csms.ocpp.router import CallContext, handles
from csms.timeutil import parse_ocpp

from . import certificates, services


@handles("SecurityEventNotification")
def security_event_notification(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    services.security_event_record(
        station_id=ctx.station_id,
        event_type=payload["type"],
        timestamp=parse_ocpp(payload["timestamp"]),
        tech_info=payload.get("techInfo", ""),
    )
    return {}


@handles("SignCertificate")
def sign_certificate(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    answer = certificates.sign_certificate_request(
        station_id=ctx.station_id, csr_pem=payload["csr"], certificate_type=payload.get("certificateType")
    )
    return _with_reason({"status": answer.status}, answer.reason)


@handles("Get15118EVCertificate")
def get_15118_ev_certificate(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    answer = certificates.ev_certificate_get(
        identity=ctx.identity,
        schema_version=payload["iso15118SchemaVersion"],
        action=payload["action"],
        exi_request=payload["exiRequest"],
    )
    return _with_reason({"status": answer.status, "exiResponse": answer.exi_response}, answer.reason)


@handles("GetCertificateStatus")
def get_certificate_status(ctx: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    answer = certificates.certificate_status_get(ocsp_request_data=payload["ocspRequestData"])
    response = _with_reason({"status": answer.status}, answer.reason)
    if answer.ocsp_result is not None:
        response["ocspResult"] = answer.ocsp_result
    return response


def _with_reason(response: dict[str, Any], reason: str) -> dict[str, Any]:
    """statusInfo for a refusal: reasonCode (max 20) and the reason (additionalInfo, max 512)."""
    if reason:
        response["statusInfo"] = {
            "reasonCode": "Rejected" if response["status"] == "Rejected" else "Failed",
            "additionalInfo": reason[:512],
        }
    return response
