"""Local authorization list: full and differential SendLocalList payloads, versions, and the station's answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from csms.ocpp import schemas
from stations.models import ChargingStation
from transactions import services
from transactions.models import IdToken, LocalAuthList

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(station_factory):
    return station_factory("CS-LL")


def build(station: ChargingStation, *, full: bool) -> dict[str, Any] | None:
    payload = services.local_list_build_update(station=station, full=full)
    if payload is not None:
        schemas.validate("SendLocalList", "Request", payload)  # every payload we build is schema-valid
    return payload


def built(station: ChargingStation, *, full: bool) -> dict[str, Any]:
    """build() where an update is due."""
    payload = build(station, full=full)
    assert payload is not None, "no update built"
    return payload


def add_tokens(station: ChargingStation, *tokens: IdToken) -> None:
    services.local_list_get(station=station).tokens.add(*tokens)


def test_full_then_differential_updates_with_versions(station):
    fleet = IdToken.objects.create(id_token="FLEET", type="Central")
    a = IdToken.objects.create(id_token="A", type="ISO14443", group_id_token=fleet)
    b = IdToken.objects.create(id_token="B", type="ISO14443")
    c = IdToken.objects.create(id_token="C", type="ISO14443")
    add_tokens(station, a, b)

    full = build(station, full=True)
    assert full == {
        "updateType": "Full",
        "versionNumber": 1,
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "A", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted", "groupIdToken": {"idToken": "FLEET", "type": "Central"}},
            },
            {"idToken": {"idToken": "B", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}},
        ],
    }
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    assert LocalAuthList.objects.get(station=station).station_version == 1

    # Nothing changed: no differential to send.
    assert build(station, full=False) is None

    # B blocked, C added, A removed.
    IdToken.objects.filter(pk=b.pk).update(status="Blocked")
    local_list = services.local_list_get(station=station)
    local_list.tokens.remove(a)
    local_list.tokens.add(c)
    diff = build(station, full=False)
    assert diff == {
        "updateType": "Differential",
        "versionNumber": 2,
        "localAuthorizationList": [
            {"idToken": {"idToken": "B", "type": "ISO14443"}, "idTokenInfo": {"status": "Blocked"}},
            {"idToken": {"idToken": "C", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}},
            {"idToken": {"idToken": "A", "type": "ISO14443"}},  # no idTokenInfo: remove from the list
        ],
    }
    services.local_list_record_result(station=station, version_number=2, status="Accepted")
    local_list.refresh_from_db()
    assert (local_list.station_version, local_list.pending_version, local_list.last_status) == (2, None, "Accepted")
    assert sorted(local_list.synced_entries) == ["ISO14443:b", "ISO14443:c"]
    assert build(station, full=False) is None

    # An explicit full update carries the whole list at the next version.
    assert built(station, full=True)["versionNumber"] == 3


def test_first_update_is_full_even_when_differential_asked(station):
    add_tokens(station, IdToken.objects.create(id_token="A", type="ISO14443"))
    payload = built(station, full=False)
    assert (payload["updateType"], payload["versionNumber"]) == ("Full", 1)


def test_empty_full_update_clears_the_station_list(station):
    assert build(station, full=True) == {"updateType": "Full", "versionNumber": 1}


def test_failed_keeps_the_old_version_and_next_diff_resends(station):
    a = IdToken.objects.create(id_token="A", type="ISO14443")
    add_tokens(station, a)
    build(station, full=True)
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    b = IdToken.objects.create(id_token="B", type="ISO14443")
    add_tokens(station, b)
    assert built(station, full=False)["versionNumber"] == 2
    services.local_list_record_result(station=station, version_number=2, status="Failed")
    local_list = LocalAuthList.objects.get(station=station)
    assert (local_list.station_version, local_list.last_status) == (1, "Failed")
    retry = built(station, full=False)
    assert retry["versionNumber"] == 3  # versions only grow
    assert retry["localAuthorizationList"] == [
        {"idToken": {"idToken": "B", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}
    ]


def test_version_mismatch_forces_a_full_update(station):
    add_tokens(station, IdToken.objects.create(id_token="A", type="ISO14443"))
    build(station, full=True)
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    add_tokens(station, IdToken.objects.create(id_token="B", type="ISO14443"))
    build(station, full=False)
    services.local_list_record_result(station=station, version_number=2, status="VersionMismatch")
    payload = built(station, full=False)
    assert (payload["updateType"], payload["versionNumber"]) == ("Full", 3)
    assert len(payload["localAuthorizationList"]) == 2


def test_stale_result_is_ignored(station):
    add_tokens(station, IdToken.objects.create(id_token="A", type="ISO14443"))
    build(station, full=True)  # v1, unanswered
    build(station, full=True)  # v2 supersedes it
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    local_list = LocalAuthList.objects.get(station=station)
    assert (local_list.station_version, local_list.pending_version) == (None, 2)


def test_get_local_list_version_result(station):
    assert services.get_local_list_version_payload() == {}
    schemas.validate("GetLocalListVersion", "Request", services.get_local_list_version_payload())
    schemas.validate("ClearCache", "Request", services.clear_cache_payload())
    add_tokens(station, IdToken.objects.create(id_token="A", type="ISO14443"))
    build(station, full=True)
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    assert services.local_list_record_version(station=station.pk, version_number=1) is True  # a pk works too
    assert build(station, full=False) is None
    # The station lost its list (reports 0): the next update is Full.
    assert services.local_list_record_version(station=station, version_number=0) is False
    assert built(station, full=False)["updateType"] == "Full"


def test_expired_token_is_sent_as_expired(station):
    token = IdToken.objects.create(id_token="A", type="ISO14443", expires_at=timezone.now() + timedelta(hours=1))
    add_tokens(station, token)
    build(station, full=True)
    services.local_list_record_result(station=station, version_number=1, status="Accepted")
    diff = services.local_list_build_update(station=station, full=False, now=timezone.now() + timedelta(hours=2))
    assert diff is not None
    assert diff["localAuthorizationList"] == [
        {"idToken": {"idToken": "A", "type": "ISO14443"}, "idTokenInfo": {"status": "Expired"}}
    ]
