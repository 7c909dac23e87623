"""CustomerInformation (block N) end to end: live daphne, a real station socket answering the CSMS's commands."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from csms.models import MessagePart
from tests.api_client import api
from tests.conftest import in_thread
from tests.ocpp_client import RawStation, run
from tests.stations.helpers import wait_online
from transactions import customers
from transactions.models import (
    ChargingTransaction,
    CustomerDataClearance,
    CustomerInformationRequest,
    IdToken,
    MeterSample,
    RemoteStartRequest,
    Reservation,
    TransactionEventRecord,
)

pytestmark = pytest.mark.live

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
CARD = "CARD-42"


def user_with(username: str, *codenames: str) -> str:
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="transactions", codename__in=codenames)
    )
    return Token.objects.create(user=user).key


async def answer_next(st: RawStation, payload: dict[str, Any]) -> list[Any]:
    frame = await st.recv(10)
    assert frame[0] == 2, frame
    await st.send_raw(json.dumps([3, frame[1], payload]))
    return frame


async def until(predicate: Any, timeout_s: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if value := await in_thread(predicate):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def download(base: str, path: str, token: str) -> tuple[int, str, str]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Token {token}", "Accept": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, "", ""


def test_report_three_parts_out_of_order_are_assembled_and_downloadable(live_server_ws, station_factory):
    station_factory("CS-1")
    operator = user_with("op", "add_customerinformationrequest", "view_customerinformationrequest")
    billing = user_with("billing", "view_customerinformationrequest")
    nobody = user_with("nobody")
    base = live_server_ws.http_url
    data = ["Sessions of CARD-42: 2026-11-01 12.3 kWh; ", "2026-11-02 8.1 kWh; ", "no stored certificates. Ünïcode ✓"]

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {"states": []}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            body = {"station": "CS-1", "report": True, "id_token": CARD, "id_token_type": "ISO14443"}
            code, created = await asyncio.to_thread(api, base, "POST", "/api/v1/customer-information/", body, operator)
            assert code == 201, created
            assert (await asyncio.to_thread(api, base, "POST", "/api/v1/customer-information/", body, billing))[
                0
            ] == 403
            out["created"] = created
            out["call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: CustomerInformationRequest.objects.filter(pk=created["id"], state="accepted").exists())
            request_id = out["call"][3]["requestId"]
            replies = []
            for seq_no in (2, 0, 1):
                part = {
                    "requestId": request_id,
                    "seqNo": seq_no,
                    "tbc": seq_no != 2,
                    "generatedAt": "2026-12-01T10:00:00Z",
                    "data": data[seq_no],
                }
                replies.append(await st.call("NotifyCustomerInformation", part))
                out["states"].append(
                    await in_thread(lambda: CustomerInformationRequest.objects.get(pk=created["id"]).state)
                )
            retry = {"requestId": request_id, "seqNo": 0, "tbc": True, "generatedAt": "2026-12-01T10:00:00Z"}
            replies.append(await st.call("NotifyCustomerInformation", retry | {"data": data[0]}))
            out["replies"] = replies
        path = f"/api/v1/customer-information/{created['id']}/"
        out["read"] = await asyncio.to_thread(api, base, "GET", path, None, billing)
        out["download"] = await asyncio.to_thread(download, base, out["read"][1]["download_url"], billing)
        out["denied"] = await asyncio.to_thread(download, base, out["read"][1]["download_url"], nobody)
        return out

    out = run(scenario())
    assert out["call"][2:] == [
        "CustomerInformation",
        {"report": True, "clear": False, "idToken": {"idToken": CARD, "type": "ISO14443"}, "requestId": 1},
    ]
    assert [r[:1] + r[2:] for r in out["replies"]] == [[3, {}]] * 4
    assert out["states"] == ["receiving", "receiving", "complete"]
    done = CustomerInformationRequest.objects.get(pk=out["created"]["id"])
    assert (done.data, done.parts_received, done.station_status) == ("".join(data), 3, "Accepted")
    assert MessagePart.objects.filter(assembly__kind="NotifyCustomerInformation").count() == 3
    code, read = out["read"]
    assert (code, read["state"], read["data"], read["requested_by"]) == (200, "complete", "".join(data), "op")
    assert out["download"] == (200, "text/plain; charset=utf-8", "".join(data))
    assert out["denied"][0] == 403


def customer_records(station: Any) -> dict[str, Any]:
    IdToken.objects.create(id_token=CARD, type="ISO14443", description="Jane Doe, +31 6 1234")
    txn = ChargingTransaction.objects.create(
        station=station,
        transaction_id="TX-1",
        id_token=CARD,
        id_token_type="ISO14443",
        started_at=T0,
        ended_at=T0.replace(hour=11),
        is_active=False,
        energy_wh=Decimal("12345.5"),
        stopped_reason="EVDisconnected",
    )
    other = ChargingTransaction.objects.create(station=station, transaction_id="TX-2", id_token="OTHER", started_at=T0)
    TransactionEventRecord.objects.create(
        transaction=txn, seq_no=0, event_type="Started", timestamp=T0, trigger_reason="Authorized", id_token=CARD
    )
    MeterSample.objects.create(
        station=station,
        transaction=txn,
        evse_id=1,
        timestamp=T0,
        measurand="Energy.Active.Import.Register",
        value=Decimal(12345),
        unit="Wh",
    )
    Reservation.objects.create(
        station=station, reservation_id=1, id_token=CARD, id_token_type="ISO14443", expires_at=T0
    )
    RemoteStartRequest.objects.create(station=station, id_token={"idToken": CARD, "type": "ISO14443"})
    return {"txn": txn.pk, "other": other.pk}


def test_an_accepted_clear_anonymises_the_records_keeps_billing_fields_and_writes_an_audit_entry(
    live_server_ws, station_factory
):
    station = station_factory("CS-1")
    rows = customer_records(station)
    operator = user_with("op", "add_customerinformationrequest", "view_customerinformationrequest")
    base = live_server_ws.http_url
    alias = customers.pseudonym(CARD)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with RawStation.connect(live_server_ws.ws_url, "CS-1") as st:
            await st.boot()
            await wait_online("CS-1")
            body = {"station": "CS-1", "report": False, "clear": True, "id_token": CARD, "id_token_type": "ISO14443"}
            # A refused clear anonymises nothing.
            code, refused = await asyncio.to_thread(api, base, "POST", "/api/v1/customer-information/", body, operator)
            assert code == 201, refused
            await answer_next(st, {"status": "Rejected"})
            out["refused"] = await until(
                lambda: CustomerInformationRequest.objects.filter(pk=refused["id"], state="rejected").first()
            )
            out["untouched"] = await in_thread(lambda: ChargingTransaction.objects.get(pk=rows["txn"]).id_token)
            code, created = await asyncio.to_thread(api, base, "POST", "/api/v1/customer-information/", body, operator)
            assert code == 201, created
            out["call"] = await answer_next(st, {"status": "Accepted"})
            await until(lambda: CustomerDataClearance.objects.exists())
            code, out["read"] = await asyncio.to_thread(
                api, base, "GET", f"/api/v1/customer-information/{created['id']}/", None, operator
            )
        return out

    out = run(scenario())
    assert out["untouched"] == CARD and out["refused"].station_status == "Rejected"
    assert out["call"][3] == {
        "report": False,
        "clear": True,
        "idToken": {"idToken": CARD, "type": "ISO14443"},
        "requestId": 2,
    }
    txn = ChargingTransaction.objects.get(pk=rows["txn"])
    assert txn.id_token == alias and alias.startswith("anon-") and CARD not in alias
    # Billing fields kept.
    assert (txn.energy_wh, txn.started_at, txn.ended_at, txn.stopped_reason, txn.id_token_type) == (
        Decimal("12345.5"),
        T0,
        T0.replace(hour=11),
        "EVDisconnected",
        "ISO14443",
    )
    assert MeterSample.objects.get(transaction=txn).value == Decimal(12345)
    assert ChargingTransaction.objects.get(pk=rows["other"]).id_token == "OTHER"
    assert TransactionEventRecord.objects.get(transaction=txn).id_token == alias
    assert Reservation.objects.get().id_token == alias
    assert RemoteStartRequest.objects.get().id_token == {"idToken": alias, "type": "ISO14443"}
    assert IdToken.objects.get().description == ""
    assert set(CustomerInformationRequest.objects.values_list("id_token", flat=True)) == {alias}
    clearance = CustomerDataClearance.objects.get()
    assert clearance.performed_by is not None and clearance.performed_by.username == "op"
    assert (clearance.pseudonym, clearance.counts) == (
        alias,
        {
            "transactions": 1,
            "transaction_events": 1,
            "reservations": 1,
            "reservation_groups": 0,
            "remote_starts": 1,
            "id_token_descriptions": 1,
            "customer_information_requests": 2,
            "local_list_entries": 0,
        },
    )
    assert "energy" in clearance.kept
    read = out["read"]
    assert (read["state"], read["id_token"], read["clearances"][0]["counts"]["transactions"]) == ("accepted", alias, 1)
    assert read["completed_at"] is not None
