"""``/api/v1/sites/`` (GET, POST, PATCH as in the interface) and the site pages."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from csms.roles import roles_ensure
from smartcharging import sites
from smartcharging.models import AllocationRound, EvseAllocation, Site, SiteMember
from stations.models import ChargingStation
from transactions.models import ChargingTransaction

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def client_for(group: str | None = None, *, staff: bool = False) -> APIClient:
    roles_ensure()
    user = User.objects.create_user(f"u-{group}-{staff}", password="pw", is_staff=staff)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def stations() -> list[ChargingStation]:
    return [ChargingStation.objects.create(identity=i) for i in ("CS-1", "CS-2", "CS-3")]


def test_post_creates_a_site_with_members_and_get_shows_its_live_load(stations):
    admin = client_for(staff=True)
    response = admin.post(
        "/api/v1/sites/", {"name": "Depot", "capacity_a": "100", "stations": ["CS-1", "CS-2"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Depot" and body["capacity_a"] == "100.0" and body["capacity_w"] is None
    assert body["strategy"] == "equal_share" and body["stations"] == ["CS-1", "CS-2"]
    assert body["load"] == {"capacity_a": [100.0, 100.0, 100.0], "allocated_a": [0.0, 0.0, 0.0],
                            "measured_a": [0.0, 0.0, 0.0], "evses": []}  # fmt: skip
    site = Site.objects.get()
    assert set(SiteMember.objects.values_list("station__identity", flat=True)) == {"CS-1", "CS-2"}
    # A running session gets its allocation (stations offline here: nothing is sent, the allocation is kept).
    ChargingStation.objects.filter(identity="CS-1").update(is_online=True, channel_name="")
    ChargingTransaction.objects.create(station=stations[0], transaction_id="TX-1", evse_id=1, started_at=T0)
    sites.site_recompute(site_id=site.pk)
    listed = client_for("billing").get("/api/v1/sites/?station=CS-1").json()
    assert listed["count"] == 1
    load = listed["results"][0]["load"]
    assert load["allocated_a"] == [100.0, 100.0, 100.0]
    evse = {"station": "CS-1", "evse_id": 1, "transaction_id": "TX-1", "limit_a": "100.0", "accepted_limit_a": None}
    assert load["evses"] == [{**evse, "measured_a": None, "reason": "equal share, L1 full"}]


def test_patch_changes_capacity_in_watts_and_members_and_recomputes(stations, django_capture_on_commit_callbacks):
    site = Site.objects.create(name="Depot", capacity_a=Decimal(100))
    sites.site_set_stations(site=site, identities=["CS-1"])
    before = Site.objects.get().requested_generation
    admin = client_for(staff=True)
    with django_capture_on_commit_callbacks(execute=True):  # the recompute job runs after the commit
        response = admin.patch(
            f"/api/v1/sites/{site.pk}/", {"capacity_w": "22080", "stations": ["CS-2", "CS-3"]}, format="json"
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["capacity_a"] is None and body["capacity_w"] == "22080"
    assert body["load"]["capacity_a"] == [32.0, 32.0, 32.0]  # 22,080 W / (230 V x 3)
    assert body["stations"] == ["CS-2", "CS-3"]
    site.refresh_from_db()
    assert site.requested_generation > before and site.computed_generation == site.requested_generation
    assert AllocationRound.objects.filter(site=site, reason__contains="site settings changed").exists()


def test_bad_input_is_a_400_with_field_errors(stations):
    admin = client_for(staff=True)
    other = Site.objects.create(name="Other", capacity_a=Decimal(50))
    sites.site_set_stations(site=other, identities=["CS-3"])
    missing = admin.post("/api/v1/sites/", {"name": "No capacity"}, format="json")
    assert missing.status_code == 400 and "capacity_a" in missing.json()
    taken = admin.post("/api/v1/sites/", {"name": "B", "capacity_a": "10", "stations": ["CS-3"]}, format="json")
    assert taken.status_code == 400
    assert taken.json() == {"stations": ["CS-3 is already in site 'Other'"]}
    unknown = admin.post("/api/v1/sites/", {"name": "C", "capacity_a": "10", "stations": ["NOPE"]}, format="json")
    assert unknown.status_code == 400 and unknown.json() == {"stations": ["unknown station(s): NOPE"]}
    strategy = admin.post("/api/v1/sites/", {"name": "D", "capacity_a": "10", "strategy": "loudest"}, format="json")
    assert strategy.status_code == 400 and "strategy" in strategy.json()
    assert Site.objects.count() == 1  # nothing half-created


def test_billing_reads_but_cannot_write_and_delete_is_not_offered(stations):
    site = Site.objects.create(name="Depot", capacity_a=Decimal(100))
    billing = client_for("billing")
    assert billing.get(f"/api/v1/sites/{site.pk}/").status_code == 200
    assert billing.patch(f"/api/v1/sites/{site.pk}/", {"capacity_a": "5"}, format="json").status_code == 403
    assert client_for(staff=True).delete(f"/api/v1/sites/{site.pk}/").status_code == 405
    assert APIClient().get("/api/v1/sites/").status_code == 401


def test_site_page_shows_capacity_members_allocation_and_its_log(stations):
    site = Site.objects.create(name="Depot", capacity_a=Decimal(32))
    sites.site_set_stations(site=site, identities=["CS-1", "CS-2"])
    ChargingStation.objects.filter(identity__in=["CS-1", "CS-2"]).update(is_online=True)
    ChargingTransaction.objects.create(station=stations[0], transaction_id="TX-1", evse_id=1, started_at=T0)
    ChargingTransaction.objects.create(station=stations[1], transaction_id="TX-2", evse_id=1, started_at=T0)
    sites.site_recompute(site_id=site.pk)
    assert set(EvseAllocation.objects.values_list("target_a", flat=True)) == {Decimal("16.0")}
    client = Client()
    client.force_login(User.objects.create_superuser("root", "", "pw"))
    page = client.get(f"/sites/{site.pk}/").content.decode()
    assert "32.0 A per phase" in page and "CS-1" in page and "CS-2" in page
    assert 'data-testid="site-load-chart"' in page and "16.0 A" in page
    assert "equal share, L1 full" in page
    assert client.get("/sites/").status_code == 200
    fragment = client.get(f"/sites/{site.pk}/load/").content.decode()
    assert fragment.startswith('<section id="site-load"') and "TX-2" in fragment


def test_offline_sessions_are_reserved_at_what_they_accepted_and_unknown_ones_not_at_all(stations):
    site = Site.objects.create(name="Depot", capacity_a=Decimal(32))
    sites.site_set_stations(site=site, identities=["CS-1", "CS-2", "CS-3"])
    ChargingStation.objects.filter(identity="CS-1").update(is_online=True)
    for station, tx in zip(stations, ("TX-1", "TX-2", "TX-3"), strict=True):
        ChargingTransaction.objects.create(station=station, transaction_id=tx, evse_id=1, started_at=T0)
    # CS-2 went offline holding an accepted 10 A; CS-3's session was never allocated (left open, limit unknown).
    sites.site_recompute(site_id=site.pk)
    EvseAllocation.objects.filter(transaction__transaction_id="TX-2").update(limit_a=Decimal(10))
    sites.site_recompute(site_id=site.pk)
    allocs = dict(EvseAllocation.objects.values_list("transaction__transaction_id", "target_a"))
    assert allocs == {"TX-1": Decimal("22.0"), "TX-2": Decimal("10.0"), "TX-3": Decimal("0.0")}
    reasons = dict(EvseAllocation.objects.values_list("transaction__transaction_id", "reason"))
    assert reasons["TX-2"] == reasons["TX-3"] == "fixed: not steerable now"
