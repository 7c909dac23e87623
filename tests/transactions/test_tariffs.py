"""Tariffs (block I) in the database: assignment, versions pinned by sessions, the Ended path, API and CDR."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from csms.timeutil import format_ocpp
from devicemodel.models import AttributeType, DeviceVariable, VariableAttribute
from stations.models import ChargingStation
from stations.services import station_register
from tests.api.helpers import call
from transactions import services, tariffs
from transactions.models import ChargingTransaction, IdToken, Tariff
from webhooks.services import active_events

from .factories import meter_value, sampled, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
D = Decimal


def make_tariff(name: str = "Standard", stations: list[ChargingStation] | None = None,
                groups: list[IdToken] | None = None, **fields: Any) -> Tariff:  # fmt: skip
    values = {"currency": "EUR", "price_per_kwh": D("0.30"), **fields}
    return tariffs.tariff_save(tariff=Tariff(name=name, **values), stations=stations, token_groups=groups)


def energy(minute: int, wh: int) -> list[dict]:
    return [meter_value(format_ocpp(T0 + timedelta(minutes=minute)), sampled(wh))]


def apply(station: ChargingStation, event: dict) -> dict:
    result = services.transaction_event_apply(station_id=station.pk, event=event)
    return services.transaction_event_response(result, event["eventType"])


def test_tariff_for_prefers_token_group_then_station_then_default():
    station, _ = station_register(identity="T-1")
    other, _ = station_register(identity="T-2")
    fleet = IdToken.objects.create(id_token="FLEET", type="Central")
    card = IdToken.objects.create(id_token="CARD", group_id_token=fleet)
    loner = IdToken.objects.create(id_token="LONER")
    default = make_tariff("Default", is_default=True)
    own = make_tariff("Station", stations=[station])
    group = make_tariff("Fleet", groups=[fleet])
    now = T0 + timedelta(days=1)

    def chosen(st: ChargingStation, token: IdToken | None) -> str:
        version = tariffs.tariff_for(station=st, id_token=token, at=now)
        assert version is not None
        return version.prices["name"]

    assert chosen(station, card) == "Fleet"  # a member of the group
    assert chosen(station, fleet) == "Fleet"  # the group token itself
    assert chosen(station, loner) == "Station"
    assert chosen(station, None) == "Station"
    assert chosen(other, loner) == "Default"
    assert chosen(other, card) == "Fleet"
    assert (default.version, own.version, group.version) == (1, 1, 1)


def test_a_site_tariff_applies_to_its_members_without_a_tariff_of_their_own():
    from smartcharging.models import Site, SiteMember

    in_site, _ = station_register(identity="S-1")
    own_tariff, _ = station_register(identity="S-2")
    outside, _ = station_register(identity="S-3")
    site = Site.objects.create(name="Depot", capacity_a=D(100))
    SiteMember.objects.create(site=site, station=in_site)
    SiteMember.objects.create(site=site, station=own_tariff)
    fleet = IdToken.objects.create(id_token="FLEET", type="Central")
    make_tariff("Default", is_default=True)
    make_tariff("Station", stations=[own_tariff])
    make_tariff("Fleet", groups=[fleet])
    tariffs.tariff_save(tariff=Tariff(name="Depot", currency="EUR", price_per_kwh=D("0.25")), sites=[site])
    now = T0 + timedelta(days=1)

    def chosen(st: ChargingStation, token: IdToken | None = None) -> str:
        version = tariffs.tariff_for(station=st, id_token=token, at=now)
        assert version is not None
        return version.prices["name"]

    # token group, then the station's own, then its site's, then the default
    assert (chosen(in_site), chosen(own_tariff), chosen(outside)) == ("Depot", "Station", "Default")
    assert chosen(in_site, fleet) == "Fleet"
    # a site has one tariff: a second one is refused
    with pytest.raises(tariffs.TariffError) as refused:
        tariffs.tariff_save(tariff=Tariff(name="Depot 2", currency="EUR"), sites=[site])
    assert refused.value.errors == {"sites": ["Depot already has the tariff 'Depot'"]}


def test_site_tariffs_through_the_api_and_the_currency_of_their_members(tokens):
    from smartcharging.models import Site, SiteMember

    station, _ = station_register(identity="S-9")
    site = Site.objects.create(name="Harbour", capacity_a=D(63))
    SiteMember.objects.create(site=site, station=station)
    currency_reported(station, "CHF")
    body = {**BODY, "name": "Harbour", "stations": [], "sites": ["Harbour"]}
    code, refused = call(tokens["admin"], "POST", "/api/v1/tariffs/", body)
    assert (code, refused) == (
        400, {"sites": ["S-9 is configured for CHF (TariffCostCtrlr.Currency); the tariff is in EUR"]}
    )  # fmt: skip
    code, created = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**body, "currency": "CHF"})
    assert code == 201, created
    assert created["sites"] == ["Harbour"]
    version = tariffs.tariff_for(station=station, id_token=None, at=timezone.now())
    assert version is not None and version.prices["name"] == "Harbour"


def test_a_session_keeps_its_tariff_version_after_the_tariff_is_edited():
    station, _ = station_register(identity="T-3")
    tariff = make_tariff(stations=[station], session_fee=D("1.00"))
    apply(station, tx_event("Started", 0, format_ocpp(T0), meter=energy(0, 1000), info={"chargingState": "Charging"}))
    # the price rises while the session runs: a new version for sessions that start from now on
    tariff.price_per_kwh = D("0.90")
    tariffs.tariff_save(tariff=tariff)
    assert Tariff.objects.get(pk=tariff.pk).version == 2
    # saving it again unchanged, as read back from the database, makes no version
    tariffs.tariff_save(tariff=Tariff.objects.get(pk=tariff.pk))
    assert tariff.versions.count() == 2
    response = apply(station, tx_event("Ended", 1, format_ocpp(T0 + timedelta(minutes=30)), meter=energy(30, 11000)))
    txn = ChargingTransaction.objects.get(transaction_id="TX-1")
    assert txn.tariff_version is not None and txn.tariff_version.number == 1
    # 10 kWh at the version-1 price 0.30 + 1.00 fee
    assert (txn.cost, txn.currency, response) == (D("4.000"), "EUR", {"totalCost": 4.0})
    apply(station, tx_event("Started", 0, format_ocpp(timezone.now()), transaction_id="TX-2"))
    assert ChargingTransaction.objects.get(transaction_id="TX-2").tariff_version.number == 2  # type: ignore[union-attr]


def test_ended_event_costs_a_fixed_few_more_statements(django_assert_num_queries):
    station, _ = station_register(identity="T-4")
    make_tariff(stations=[station], price_per_hour=D("2"))
    apply(station, tx_event("Started", 0, format_ocpp(T0), meter=energy(0, 1000), info={"chargingState": "Charging"}))
    for seq in range(1, 4):
        apply(
            station, tx_event("Updated", seq, format_ocpp(T0 + timedelta(minutes=seq)), meter=energy(seq, 1000 + seq))
        )
    active_events()
    ended = tx_event("Ended", 4, format_ocpp(T0 + timedelta(minutes=30)), meter=energy(30, 4000))
    # The in-order path (BEGIN, lock, insert event, insert samples, update, COMMIT) plus, once per session: the
    # pinned version's prices, the charging states and the energy readings for the final cost; and the session
    # observers of its end (transactions/observers.py): the station's site looked up (site load management's
    # filter: a station in no site costs it no savepoint), the station's TxProfiles for it dropped (in a savepoint).
    with django_assert_num_queries(12):
        response = apply(station, ended)
    # 3 kWh at 0.30 + 0.5 h charging at 2.00
    assert response == {"totalCost": 1.9}
    # A retried Ended gets the same totalCost and changes nothing.
    assert apply(station, ended) == {"totalCost": 1.9}


def test_no_tariff_means_no_total_cost_and_no_cost():
    station, _ = station_register(identity="T-5")
    apply(station, tx_event("Started", 0, format_ocpp(T0), meter=energy(0, 1000)))
    assert apply(station, tx_event("Ended", 1, format_ocpp(T0 + timedelta(minutes=5)), meter=energy(5, 2000))) == {}
    txn = ChargingTransaction.objects.get()
    assert (txn.tariff_version_id, txn.cost, txn.currency) == (None, None, "")


def test_a_free_tariff_answers_total_cost_zero():
    station, _ = station_register(identity="T-6")
    make_tariff(stations=[station], price_per_kwh=D(0))
    apply(station, tx_event("Started", 0, format_ocpp(T0), meter=energy(0, 1000)))
    assert apply(station, tx_event("Ended", 1, format_ocpp(T0 + timedelta(minutes=5)), meter=energy(5, 2000))) == {
        "totalCost": 0.0
    }


# --- API ------------------------------------------------------------------------------------------------------


@pytest.fixture
def tokens() -> dict[str, str]:
    """API tokens per role (users without a password: no hashing cost)."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from csms.roles import roles_ensure

    roles_ensure()
    keys: dict[str, str] = {}
    for role in ("none", "billing", "admin"):
        user = User.objects.create(username=f"user-{role}", is_staff=role == "admin", is_superuser=role == "admin")
        if role == "billing":
            user.groups.add(Group.objects.get(name=role))
        keys[role] = Token.objects.create(user=user).key
    return keys


def currency_reported(station: ChargingStation, currency: str) -> None:
    variable = DeviceVariable.objects.create(
        station=station, component_name="TariffCostCtrlr", name="Currency", updated_at=T0
    )
    VariableAttribute.objects.create(variable=variable, type=AttributeType.ACTUAL, value=currency, updated_at=T0)


BODY = {
    "name": "Day",
    "currency": "EUR",
    "price_per_kwh": "0.35",
    "price_per_hour": "1.20",
    "idle_price_per_hour": "6",
    "session_fee": "0.50",
    "stations": ["API-1"],
    "is_default": False,
}


def test_api_create_patch_list_with_decimal_strings(tokens):
    station_register(identity="API-1")
    IdToken.objects.create(id_token="FLEET-9", type="Central")
    body = {**BODY, "bands": [{"start": "18:00", "end": "22:00", "price_per_kwh": "0.45"}], "token_groups": ["fleet-9"]}
    code, created = call(tokens["admin"], "POST", "/api/v1/tariffs/", body)
    assert code == 201, created
    assert {k: created[k] for k in BODY} == {
        **BODY,
        "price_per_kwh": "0.350000",
        "price_per_hour": "1.200000",
        "idle_price_per_hour": "6.000000",
        "session_fee": "0.500000",
    }
    assert (created["version"], created["token_groups"], created["bands"][0]["price_per_kwh"]) == (
        1,
        ["FLEET-9"],
        "0.45",
    )
    code, patched = call(tokens["admin"], "PATCH", f"/api/v1/tariffs/{created['id']}/", {"price_per_kwh": "0.40"})
    assert (code, patched["price_per_kwh"], patched["version"], patched["stations"]) == (200, "0.400000", 2, ["API-1"])
    code, listed = call(tokens["billing"], "GET", "/api/v1/tariffs/?station=API-1")
    assert (code, listed["count"], listed["results"][0]["name"]) == (200, 1, "Day")
    assert call(tokens["billing"], "POST", "/api/v1/tariffs/", {**BODY, "name": "X"})[0] == 403
    assert call(tokens["none"], "GET", "/api/v1/tariffs/")[0] == 403


def test_api_validation_errors(tokens):
    station_register(identity="API-1")
    code, body = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "currency": "eu1", "price_per_kwh": "-1"})
    assert code == 400 and set(body) == {"currency", "price_per_kwh"}
    code, body = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "bands": [{"start": "25:00", "end": "x"}]})
    assert (code, body) == (400, {"bands": ["band 0: start must be HH:MM", "band 0: end must be HH:MM"]})
    code, body = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "token_groups": ["NOPE"]})
    assert (code, body) == (400, {"token_groups": ["NOPE: unknown id token"]})
    assert call(tokens["admin"], "POST", "/api/v1/tariffs/", BODY)[0] == 201
    code, body = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "name": "Night"})
    assert (code, body) == (400, {"stations": ["API-1 already has the tariff 'Day'"]})
    assert Tariff.objects.count() == 1


def test_api_refuses_a_currency_the_station_does_not_bill_in(tokens):
    station, _ = station_register(identity="API-1")
    currency_reported(station, "CHF")
    code, body = call(tokens["admin"], "POST", "/api/v1/tariffs/", BODY)
    assert (code, body) == (
        400, {"stations": ["API-1 is configured for CHF (TariffCostCtrlr.Currency); the tariff is in EUR"]}
    )  # fmt: skip
    code, created = call(tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "currency": "chf"})
    assert (code, created["currency"]) == (201, "CHF")
    # changing the currency of a tariff already assigned is checked against its stations too
    code, body = call(tokens["admin"], "PATCH", f"/api/v1/tariffs/{created['id']}/", {"currency": "EUR"})
    assert code == 400 and set(body) == {"currency"}


def test_making_a_tariff_the_default_takes_the_role_from_the_previous_one(tokens):
    first = make_tariff("A", is_default=True)
    code, body = call(
        tokens["admin"], "POST", "/api/v1/tariffs/", {**BODY, "name": "B", "stations": [], "is_default": True}
    )
    assert code == 201, body
    assert list(Tariff.objects.filter(is_default=True).values_list("name", flat=True)) == ["B"]
    assert Tariff.objects.get(pk=first.pk).is_default is False


# --- CDR and transactions API ---------------------------------------------------------------------------------


def signed(value: str) -> dict[str, str]:
    return {"signedMeterData": value, "signingMethod": "ECDSA-secp256r1-SHA256", "encodingMethod": "OCMF",
            "publicKey": "PUBKEY"}  # fmt: skip


def test_cdr_export_has_cost_currency_and_signed_meter_values(tokens):
    station, _ = station_register(identity="CDR-1")
    make_tariff(stations=[station], currency="EUR", price_per_kwh=D("0.333"), tax_rate_percent=D(19),
                prices_include_tax=False)  # fmt: skip

    def reading(minute: int, wh: int, sign: str) -> list[dict]:
        value = {**sampled(wh), "signedMeterValue": signed(sign)}
        return [meter_value(format_ocpp(T0 + timedelta(minutes=minute)), value)]

    apply(station, tx_event("Started", 0, format_ocpp(T0), meter=reading(0, 1000, "OCMF|start")))
    apply(station, tx_event("Updated", 1, format_ocpp(T0 + timedelta(minutes=10)), meter=reading(10, 5000, "mid")))
    apply(station, tx_event("Ended", 2, format_ocpp(T0 + timedelta(minutes=20)), meter=reading(20, 11000, "OCMF|end")))
    path = "/api/v1/transactions/export.json?start=2026-03-01T00:00:00Z&end=2026-03-02T00:00:00Z"
    code, raw = call(tokens["billing"], "GET", path)
    [record] = json.loads(raw)
    # 10 kWh at 0.333 = 3.33, + 19 % = 3.9627 -> 3.96
    assert (code, record["cost"], record["currency"]) == (200, "3.96", "EUR")
    assert (record["signed_meter_value_start"], record["signed_meter_value_end"]) == (
        signed("OCMF|start"), signed("OCMF|end"),
    )  # fmt: skip
    code, raw = call(tokens["billing"], "GET", path.replace("export.json", "export.csv"))
    [row] = list(csv.DictReader(io.StringIO(raw.decode())))
    assert (row["cost"], row["currency"], json.loads(row["signed_meter_value_end"])) == (
        "3.96",
        "EUR",
        signed("OCMF|end"),
    )
    code, listed = call(tokens["billing"], "GET", "/api/v1/transactions/")
    assert (listed["results"][0]["cost"], listed["results"][0]["currency"]) == ("3.96", "EUR")


# --- Pages ----------------------------------------------------------------------------------------------------


def test_pages_show_running_and_final_cost_and_the_tariffs():
    from django.contrib.auth.models import User
    from django.test import Client

    station, _ = station_register(identity="UI-1")
    make_tariff("Evening", stations=[station], price_per_kwh=D("0.50"), session_fee=D("1"),
                bands=[{"start": "18:00", "end": "22:00", "price_per_kwh": "0.60"}])  # fmt: skip
    start = timezone.now() - timedelta(minutes=30)
    apply(station, tx_event("Started", 0, format_ocpp(start), meter=[meter_value(format_ocpp(start), sampled(0))]))
    later = start + timedelta(minutes=10)
    apply(station, tx_event("Updated", 1, format_ocpp(later), meter=[meter_value(format_ocpp(later), sampled(2000))]))
    client = Client()
    client.force_login(User.objects.create(username="viewer"))
    txn = ChargingTransaction.objects.get()
    page = client.get(f"/sessions/{txn.pk}/").content.decode()
    expected = tariffs.transaction_cost(txn)
    assert expected is not None and expected.total > D(1)  # the fee and 2 kWh, at whichever band price applies now
    assert f'data-testid="session-cost">{expected.total} EUR<' in page and "cost so far" in page
    assert "Evening (version 1)" in page
    apply(station, tx_event("Ended", 2, format_ocpp(later), meter=[meter_value(format_ocpp(later), sampled(2000))]))
    listing = client.get("/sessions/").content.decode()
    final = ChargingTransaction.objects.get().cost
    assert final is not None and f'data-testid="session-cost">{final.quantize(D("0.01"))} EUR<' in listing
    tariffs_page = client.get("/tariffs/").content.decode()
    assert "Evening" in tariffs_page and "18:00–22:00 0.60/kWh" in tariffs_page and ">UI-1</a>" in tariffs_page


def test_admin_saves_through_the_service_with_versions_and_the_currency_check():
    from django.contrib.auth.models import User
    from django.test import Client

    station, _ = station_register(identity="ADM-1")
    currency_reported(station, "CHF")
    client = Client()
    client.force_login(User.objects.create_superuser("root", "", "pw"))
    form = {
        "name": "Admin", "currency": "EUR", "price_per_kwh": "0.3", "price_per_hour": "0", "idle_price_per_hour": "0",
        "session_fee": "0", "tax_rate_percent": "0", "prices_include_tax": "on", "bands": "[]",
        "stations": [station.pk], "versions-TOTAL_FORMS": "0", "versions-INITIAL_FORMS": "0",
    }  # fmt: skip
    refused = client.post("/admin/transactions/tariff/add/", form)
    assert refused.status_code == 200 and "TariffCostCtrlr.Currency" in refused.content.decode()
    assert not Tariff.objects.exists()
    assert client.post("/admin/transactions/tariff/add/", {**form, "currency": "chf"}).status_code == 302
    tariff = Tariff.objects.get()
    assert (tariff.currency, tariff.version, list(tariff.stations.all())) == ("CHF", 1, [station])
    assert tariff.versions.get().prices["price_per_kwh"] == "0.300000"
