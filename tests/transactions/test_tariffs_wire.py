"""Tariffs over the wire (block I): a simulated station on the ASGI app in process gets the tariff text, CostUpdated
from the beat task (once per change) and totalCost in the answer to its Ended event."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from csms.timeutil import format_ocpp
from stations.commands import helpers as command_helpers
from stations.models import ChargingStation, Command
from tests.conftest import in_thread, wait_until_async
from tests.ocpp_client import run
from transactions import tariffs
from transactions.models import ChargingTransaction, IdToken, Tariff
from transactions.tasks import cost_updates_send_task

from .factories import meter_value, sampled, tx_event

CARD = {"idToken": "CARD-1", "type": "ISO14443"}
EVSE = {"id": 1, "connectorId": 1}
TEXT = "0.40 EUR/kWh, 0.00 EUR/h charging, 0.00 EUR/h idle, 0.50 EUR per session"


def energy(at: datetime, wh: int) -> list[dict[str, Any]]:
    return [meter_value(format_ocpp(at), sampled(wh))]


def test_cost_updated_from_the_beat_task_and_total_cost_in_the_ended_answer(asgi_server, station_factory):
    assert settings.CELERY_BEAT_SCHEDULE["transactions-cost-updates"] == {
        "task": "transactions.cost_updates_send",
        "schedule": float(settings.CSMS_COST_UPDATE_INTERVAL_S),
    }
    station = station_factory("W-1")
    assert isinstance(station, ChargingStation)
    IdToken.objects.create(id_token="CARD-1", type="ISO14443")
    tariffs.tariff_save(
        tariff=Tariff(name="Energy", currency="EUR", price_per_kwh=Decimal("0.40"), session_fee=Decimal("0.50")),
        stations=[station],
    )
    t0 = timezone.now() - timedelta(hours=1)

    def cost_updates() -> list[Command]:
        return list(Command.objects.filter(action="CostUpdated").order_by("pk"))

    async def scenario() -> dict[str, Any]:
        async with asgi_server.station("W-1") as st:
            assert (await st.boot())[0] == 3
            out: dict[str, Any] = {"authorize": await st.call("Authorize", {"idToken": CARD})}
            started = tx_event("Started", 0, format_ocpp(t0), trigger="Authorized", id_token=CARD, evse=EVSE,
                               info={"chargingState": "Charging"}, meter=energy(t0, 1000))  # fmt: skip
            out["started"] = await st.call("TransactionEvent", started)
            updated = tx_event("Updated", 1, format_ocpp(t0 + timedelta(minutes=10)),
                               meter=energy(t0 + timedelta(minutes=10), 6000))  # fmt: skip
            await st.call("TransactionEvent", updated)
            out["sent_first"] = await in_thread(cost_updates_send_task)
            frame = await st.recv(10)
            out["frame"] = frame
            await st.send_raw(json.dumps([3, frame[1], {}]))
            assert await wait_until_async(lambda: cost_updates()[0].state == "answered", timeout_s=10)
            # Nothing new: the next run sends nothing.
            out["sent_again"] = await in_thread(cost_updates_send_task)
            # An operator's CostUpdated (another door): its answer hook records what the station shows, so the
            # job corrects it at its next run.
            await in_thread(lambda: command_helpers.cost_updated(station, total_cost=9.99, transaction_id="TX-1"))
            operator = await st.recv(10)
            await st.send_raw(json.dumps([3, operator[1], {}]))
            assert await wait_until_async(lambda: cost_updates()[-1].state == "answered", timeout_s=10)
            out["shown_after_operator"] = await in_thread(lambda: ChargingTransaction.objects.get().cost_sent)
            out["sent_correction"] = await in_thread(cost_updates_send_task)
            correction = await st.recv(10)
            await st.send_raw(json.dumps([3, correction[1], {}]))
            out["correction"] = correction
            end = t0 + timedelta(minutes=20)
            ended = tx_event("Ended", 2, format_ocpp(end), trigger="EVCommunicationLost",
                             info={"stoppedReason": "EVDisconnected"}, meter=energy(end, 8500))  # fmt: skip
            out["ended"] = await st.call("TransactionEvent", ended)
            out["sent_after_end"] = await in_thread(cost_updates_send_task)
            return out

    out = run(scenario())
    assert out["authorize"][2] == {
        "idTokenInfo": {"status": "Accepted", "personalMessage": {"format": "UTF8", "content": TEXT}}
    }
    assert out["started"][2] == {
        "idTokenInfo": {"status": "Accepted", "personalMessage": {"format": "UTF8", "content": TEXT}}
    }
    # running cost: 5 kWh at 0.40 + 0.50
    assert out["sent_first"] == 1
    assert out["frame"][2:] == ["CostUpdated", {"totalCost": 2.5, "transactionId": "TX-1"}]
    assert (out["sent_again"], out["shown_after_operator"], out["sent_correction"]) == (0, Decimal("9.990"), 1)
    assert out["correction"][2:] == ["CostUpdated", {"totalCost": 2.5, "transactionId": "TX-1"}]
    assert (out["sent_after_end"], len(cost_updates())) == (0, 3)
    # final: 7.5 kWh at 0.40 + 0.50
    assert out["ended"][2] == {"totalCost": 3.5}
    txn = ChargingTransaction.objects.get()
    assert (txn.cost, txn.currency, txn.cost_sent) == (Decimal("3.500"), "EUR", Decimal("2.500"))
