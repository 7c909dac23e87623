"""The customer-clear policy without a socket: the setting, references the CSMS keeps nothing under, a second clear."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from stations.models import Command
from transactions import customers
from transactions.models import ChargingTransaction, CustomerDataClearance, CustomerInformationRequest

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def accepted_clear(station: Any, **reference: Any) -> Command:
    command = Command.objects.create(
        station=station,
        action="CustomerInformation",
        request={"report": False, "clear": True, **reference},
        state="sent",
    )
    customers.customer_information_on_sending(command)
    command.save()
    command.state, command.response = "answered", {"status": "Accepted"}
    with transaction.atomic():  # as in command_finish
        customers.customer_information_on_answered(command)
    return command


def test_the_setting_off_leaves_the_records_and_writes_no_audit_entry(station_factory, settings):
    station = station_factory("CS-1")
    ChargingTransaction.objects.create(station=station, transaction_id="TX-1", id_token="CARD", started_at=T0)
    settings.CSMS_CUSTOMER_CLEAR_ANONYMISES = False
    accepted_clear(station, idToken={"idToken": "CARD", "type": "Central"})
    assert ChargingTransaction.objects.get().id_token == "CARD"
    assert not CustomerDataClearance.objects.exists()
    assert CustomerInformationRequest.objects.get().state == "accepted"


def test_a_customer_identifier_changes_nothing_and_a_second_clear_counts_nothing_new(station_factory):
    station = station_factory("CS-1")
    ChargingTransaction.objects.create(station=station, transaction_id="TX-1", id_token="CARD", started_at=T0)
    accepted_clear(station, customerIdentifier="customer-7")
    first = CustomerDataClearance.objects.get()
    assert (first.pseudonym, first.counts) == ("", {})
    accepted_clear(station, idToken={"idToken": "CARD", "type": "Central"})
    accepted_clear(station, idToken={"idToken": "CARD", "type": "Central"})
    second, third = CustomerDataClearance.objects.order_by("pk")[1:]
    assert second.counts["transactions"] == 1 and third.counts["transactions"] == 0
    assert second.pseudonym == third.pseudonym == customers.pseudonym("CARD")
    assert ChargingTransaction.objects.get().id_token == customers.pseudonym("CARD")
    requests = list(CustomerInformationRequest.objects.order_by("request_id").values_list("request_id", "id_token"))
    assert requests == [(1, ""), (2, customers.pseudonym("CARD")), (3, customers.pseudonym("CARD"))]


def report_request(station: Any, *, clear: bool, **reference: Any) -> Command:
    """An accepted CustomerInformation with report (and clear when asked), as the answer hook leaves it."""
    command = Command.objects.create(
        station=station,
        action="CustomerInformation",
        request={"report": True, "clear": clear, **reference},
        state="sent",
    )
    customers.customer_information_on_sending(command)
    command.save()
    command.state, command.response = "answered", {"status": "Accepted"}
    with transaction.atomic():
        customers.customer_information_on_answered(command)
    return command


def empty_part(station: Any, request_id: int) -> CustomerInformationRequest:
    part = {"requestId": request_id, "seqNo": 0, "tbc": False, "generatedAt": "2026-12-01T10:00:00Z", "data": ""}
    with transaction.atomic():
        return customers.customer_information_part_record(
            station_id=station.pk, request_id=request_id, seq_no=0, tbc=False, data="", payload=part
        )


def test_an_accepted_report_with_no_data_completes_on_one_empty_part(station_factory):
    """TC_N_28: Accepted, then one NotifyCustomerInformation with empty data: the request is complete, empty."""
    station = station_factory("CS-1")
    command = report_request(station, clear=False, idToken={"idToken": "CARD", "type": "Central"})
    request = CustomerInformationRequest.objects.get(command=command)
    assert (request.state, request.completed_at) == ("accepted", None)
    done = empty_part(station, command.request["requestId"])
    assert (done.pk, done.state, done.data, done.parts_received) == (request.pk, "complete", "", 1)
    assert done.completed_at is not None
    assert not CustomerDataClearance.objects.exists()


def test_clear_and_report_with_no_data_anonymises_and_completes(station_factory):
    """TC_N_31: clear + report, Accepted, one empty part: the records are anonymised and the request complete."""
    station = station_factory("CS-1")
    ChargingTransaction.objects.create(station=station, transaction_id="TX-1", id_token="CARD", started_at=T0)
    command = report_request(station, clear=True, idToken={"idToken": "CARD", "type": "Central"})
    assert CustomerInformationRequest.objects.get(command=command).completed_at is None  # the report is to come
    done = empty_part(station, command.request["requestId"])
    assert (done.state, done.data) == ("complete", "")
    assert ChargingTransaction.objects.get().id_token == customers.pseudonym("CARD")
    assert CustomerDataClearance.objects.get().counts["transactions"] == 1


CERTIFICATE = {"hashAlgorithm": "SHA256", "issuerNameHash": "a" * 64, "issuerKeyHash": "b" * 64, "serialNumber": "1f"}


def test_a_clear_by_customer_certificate_is_sent_and_recorded(station_factory):
    """TC_N_63: clear by customerCertificate: the exact request (the service and the raw door), the request kept
    with its certificate; the CSMS keeps no records by certificate (zero counts)."""
    station = station_factory("CS-1")
    request = customers.customer_information_request(
        station=station, report=False, clear=True, customer_certificate=CERTIFICATE
    )
    assert request.command is not None
    assert request.command.request == {
        "report": False,
        "clear": True,
        "customerCertificate": CERTIFICATE,
        "requestId": request.request_id,
    }
    command = accepted_clear(station, customerCertificate=CERTIFICATE)
    answered = CustomerInformationRequest.objects.get(command=command)
    assert (answered.customer_certificate, answered.state, answered.id_token) == (CERTIFICATE, "accepted", "")
    assert answered.completed_at is not None
    assert CustomerDataClearance.objects.get(request=answered).counts == {}


def test_a_clear_takes_the_token_off_the_local_lists_and_the_next_sync_removes_it(station_factory, settings):
    """TC_N_46: an accepted clear for a token on a station's local list: the next differential removes it."""
    from transactions import services
    from transactions.models import IdToken

    station = station_factory("CS-1")
    other = station_factory("CS-2")
    card = IdToken.objects.create(id_token="CARD", type="ISO14443")
    keep = IdToken.objects.create(id_token="KEEP", type="ISO14443")
    for s in (station, other):
        services.local_list_get(station=s).tokens.add(card, keep)
        full = services.local_list_build_update(station=s, full=True)
        assert full is not None
        services.local_list_record_result(station=s, version_number=full["versionNumber"], status="Accepted")
    accepted_clear(station, idToken={"idToken": "card", "type": "Central"})
    assert CustomerDataClearance.objects.get().counts["local_list_entries"] == 2
    for s in (station, other):
        assert list(services.local_list_get(station=s).tokens.values_list("id_token", flat=True)) == ["KEEP"]
        update = services.local_list_build_update(station=s, full=False)
        assert update == {
            "updateType": "Differential",
            "versionNumber": 2,
            "localAuthorizationList": [{"idToken": {"idToken": "CARD", "type": "ISO14443"}}],
        }
    # The setting off: the lists keep the token.
    settings.CSMS_CUSTOMER_CLEAR_LOCAL_LIST = False
    services.local_list_get(station=station).tokens.add(card)
    accepted_clear(station, idToken={"idToken": "CARD", "type": "Central"})
    last = CustomerDataClearance.objects.order_by("pk").last()
    assert last is not None and "local_list_entries" not in last.counts
    assert services.local_list_get(station=station).tokens.filter(id_token="CARD").exists()
