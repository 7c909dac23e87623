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
