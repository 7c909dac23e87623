"""Customer information (block N): CustomerInformation -> NotifyCustomerInformation, the operator's tool for GDPR
requests, and the anonymisation of the CSMS's own records after an accepted clear.

Every CustomerInformation, whichever door sent it (this service, the API, the dashboard's "any request" form, the
admin), records its request in a send hook that allocates the ``requestId``; the answer hook moves it on; the
station's NotifyCustomerInformation parts are assembled by ``csms.multipart`` (any order, retries harmless).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from csms import multipart
from stations.commands import command_send
from stations.commands.pipeline import Sender
from stations.models import ChargingStation, Command, CommandState

from .models import (
    ChargingTransaction,
    CustomerDataClearance,
    CustomerInformationRequest,
    CustomerInformationState,
    IdToken,
    IdTokenType,
    RemoteStartRequest,
    Reservation,
    TransactionEventRecord,
)

logger = logging.getLogger(__name__)

KIND = "NotifyCustomerInformation"
_ANSWERS = {
    "Accepted": CustomerInformationState.ACCEPTED,
    "Rejected": CustomerInformationState.REJECTED,
    "Invalid": CustomerInformationState.INVALID,
}
# What a clear never touches, and why: shown in every audit entry.
KEPT = (
    "Kept for billing law: each transaction's station, EVSE, times, energy, meter samples, stop reason and cost; "
    "the pseudonym still links one customer's sessions without naming them. Not rewritten: the id token itself "
    "in the id-token list (it authorises the card: block or delete it there; it leaves the stations' local lists "
    "unless CSMS_CUSTOMER_CLEAR_LOCAL_LIST is off), the command audit trail and the OCPP message log."
)


class CustomerInformationError(ValueError):
    """A request that cannot be sent as asked (neither report nor clear, or no customer reference)."""


def customer_information_request(
    *,
    station: ChargingStation,
    report: bool,
    clear: bool,
    id_token: str = "",
    id_token_type: str = IdTokenType.CENTRAL,
    customer_identifier: str = "",
    customer_certificate: dict[str, Any] | None = None,
    user: Sender = None,
) -> CustomerInformationRequest:
    """Send CustomerInformation (the requestId is allocated by the send hook). Raises CustomerInformationError,
    or CommandValidationError (nothing stored) for a request the schema refuses."""
    if not (report or clear):
        raise CustomerInformationError("ask for a report, a clear, or both")
    if not (id_token or customer_identifier or customer_certificate):
        raise CustomerInformationError("give an id token, a customer identifier or a customer certificate")
    payload: dict[str, Any] = {"report": report, "clear": clear}
    if id_token:
        payload["idToken"] = {"idToken": id_token, "type": id_token_type}
    if customer_identifier:
        payload["customerIdentifier"] = customer_identifier
    if customer_certificate:
        payload["customerCertificate"] = customer_certificate
    command = command_send(station=station, action="CustomerInformation", payload=payload, user=user)
    return CustomerInformationRequest.objects.get(command=command)


def customer_information_on_sending(command: Command) -> None:
    """Send hook of every CustomerInformation: allocate the requestId (per station) and record the request."""
    payload = command.request
    last = CustomerInformationRequest.objects.filter(station_id=command.station_id).aggregate(m=Max("request_id"))
    request_id = max(last["m"] or 0, 0) + 1
    token = payload.get("idToken") or {}
    offline = command.state == CommandState.OFFLINE
    CustomerInformationRequest.objects.create(
        station_id=command.station_id,
        request_id=request_id,
        command=command,
        report=payload["report"],
        clear=payload["clear"],
        id_token=token.get("idToken", ""),
        id_token_type=token.get("type", ""),
        customer_identifier=payload.get("customerIdentifier", ""),
        customer_certificate=payload.get("customerCertificate"),
        state=CustomerInformationState.FAILED if offline else CustomerInformationState.REQUESTED,
        requested_by_id=command.created_by_id,
    )
    command.request = {**payload, "requestId": request_id}


def customer_information_on_answered(command: Command) -> None:
    """CustomerInformation answered: Accepted, Rejected or Invalid. An accepted clear also anonymises the CSMS's
    own records of the customer (``CSMS_CUSTOMER_CLEAR_ANONYMISES``)."""
    response = command.response or {}
    status = response.get("status", "")
    request = CustomerInformationRequest.objects.select_for_update().filter(command=command).first()
    if request is None:
        return
    request.station_status = status
    request.status_info = response.get("statusInfo")
    if request.state == CustomerInformationState.REQUESTED:
        request.state = _ANSWERS.get(status, CustomerInformationState.REJECTED)
        if request.state == CustomerInformationState.ACCEPTED and not request.report:
            request.completed_at = timezone.now()  # a clear only: no NotifyCustomerInformation follows
    request.save()
    if status == "Accepted" and request.clear and settings.CSMS_CUSTOMER_CLEAR_ANONYMISES:
        customer_records_anonymise(request=request, user_id=command.created_by_id)


def customer_information_on_failed(command: Command) -> None:
    """CustomerInformation got a CALLERROR, no answer in time, or the connection closed: the request is
    ``failed`` with the reason (no anonymisation: the station did not accept a clear). Parts that still arrive
    after a timeout complete it as usual (``customer_information_part_record``)."""
    reason = "Timeout" if command.state == CommandState.TIMED_OUT else (command.error_code or "Failed")
    CustomerInformationRequest.objects.filter(command=command, state=CustomerInformationState.REQUESTED).update(
        state=CustomerInformationState.FAILED,
        status_info={"reasonCode": reason[:20], "additionalInfo": command.error_description[:512]},
        updated_at=timezone.now(),
    )


def customer_information_part_record(
    *, station_id: int, request_id: int, seq_no: int, tbc: bool, data: str, payload: dict[str, Any]
) -> CustomerInformationRequest:
    """One NotifyCustomerInformation part (any order; a retried part changes nothing). When every part is in,
    ``data`` is their ``data`` concatenated in seqNo order."""
    # Lock order station -> assembly -> request, as command_finish (station) runs the answer hook (request).
    ChargingStation.objects.select_for_update(no_key=True).filter(pk=station_id).values_list("pk").first()
    # OCPP SPEC-SILENT: parts for a requestId the CSMS never sent (another CSMS's request, or a station reporting
    # on its own) are stored all the same, as a report request without a command.
    CustomerInformationRequest.objects.bulk_create(
        [
            CustomerInformationRequest(
                station_id=station_id, request_id=request_id, report=True, state=CustomerInformationState.RECEIVING
            )
        ],
        ignore_conflicts=True,
    )
    request = CustomerInformationRequest.objects.select_for_update().get(station_id=station_id, request_id=request_id)
    outcome = multipart.part_receive(
        station_id=station_id, kind=KIND, request_id=request_id, seq_no=seq_no, tbc=tbc, payload=payload
    )
    if outcome.duplicate:
        return request
    request.parts_received = outcome.assembly.parts_received
    if outcome.completed_now:
        parts = multipart.parts_payloads(station_id=station_id, kind=KIND, request_ids=[request_id])[request_id]
        request.data = "".join(part.get("data", "") for part in parts)
        request.state = CustomerInformationState.COMPLETE
        request.completed_at = timezone.now()
    elif not outcome.complete:
        request.state = CustomerInformationState.RECEIVING
    request.save()
    return request


def pseudonym(id_token: str) -> str:
    """A stable stand-in for an id token: the same customer gets the same pseudonym, nobody can read it back.

    # OCPP SPEC-SILENT: keyed (HMAC with SECRET_KEY) rather than a bare SHA-256, since short card UIDs could be
    # found again by hashing every candidate.
    """
    digest = hmac.new(settings.SECRET_KEY.encode(), id_token.encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:24]}"


def customer_records_anonymise(*, request: CustomerInformationRequest, user_id: int | None) -> CustomerDataClearance:
    """Replace the customer's id token in the CSMS's own records by a pseudonym and clear what describes them;
    keep what billing law requires (see ``KEPT``). Writes the audit entry; idempotent (a second run counts 0).

    # OCPP SPEC-SILENT: OCPP's clear is about the station's data; the CSMS's own records are the operator's policy
    # (``CSMS_CUSTOMER_CLEAR_ANONYMISES``). A token is matched by its string, whatever its type (a card read as
    # ISO14443 or typed in as Central is one customer). A request by customer identifier or certificate only
    # changes nothing here: the CSMS keeps no records keyed by them (the audit entry says so, with zero counts).
    """
    token = request.id_token
    counts: dict[str, int] = {}
    alias = ""
    if token and not token.startswith("anon-"):
        alias = pseudonym(token)
        counts["transactions"] = ChargingTransaction.objects.filter(id_token=token).update(id_token=alias)
        counts["transaction_events"] = TransactionEventRecord.objects.filter(id_token=token).update(id_token=alias)
        counts["reservations"] = Reservation.objects.filter(id_token=token).update(id_token=alias)
        counts["reservation_groups"] = Reservation.objects.filter(group_id_token=token).update(group_id_token=alias)
        remote_starts = list(RemoteStartRequest.objects.filter(id_token__idToken=token))
        for remote_start in remote_starts:
            remote_start.id_token = {**remote_start.id_token, "idToken": alias}
        RemoteStartRequest.objects.bulk_update(remote_starts, ["id_token"])
        counts["remote_starts"] = len(remote_starts)
        counts["id_token_descriptions"] = IdToken.objects.filter(id_token__iexact=token).update(
            description="", updated_at=timezone.now()
        )
        counts["customer_information_requests"] = CustomerInformationRequest.objects.filter(id_token=token).update(
            id_token=alias
        )
        if settings.CSMS_CUSTOMER_CLEAR_LOCAL_LIST:
            # OCPP SPEC-SILENT (TC_N_46): the station cleared the token from its own local list; the CSMS's desired
            # lists drop it too, or the next sync would send it back.
            from .services import local_lists_token_remove

            counts["local_list_entries"] = local_lists_token_remove(id_token=token)
    elif token:
        alias = token  # already anonymised by an earlier clear
    clearance = CustomerDataClearance.objects.create(
        request=request, performed_by_id=user_id, pseudonym=alias, counts=counts, kept=KEPT
    )
    logger.info("customer records anonymised for request %s: %s", request.pk, counts)
    return clearance
