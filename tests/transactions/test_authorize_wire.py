"""Authorize over a live daphne server: known, unknown, blocked, expired and grouped tokens; unknown-token policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from csms.timeutil import format_ocpp
from tests.conftest import LiveServer
from tests.ocpp_client import RawStation, run
from transactions.models import IdToken

pytestmark = pytest.mark.live

HASH_DATA = [
    {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "a" * 64,
        "issuerKeyHash": "b" * 64,
        "serialNumber": "01",
        "responderURL": "http://ocsp.example.com",
    }
]


def authorize_all(server: LiveServer, identity: str, requests: list[dict]) -> list[list]:
    async def scenario() -> list[list]:
        async with RawStation.connect(server.ws_url, identity) as st:
            assert (await st.boot())[0] == 3
            return [await st.call("Authorize", payload, message_id=f"a{i}") for i, payload in enumerate(requests)]

    return run(scenario())


def token(id_token: str, type_: str = "ISO14443") -> dict[str, str]:
    return {"idToken": id_token, "type": type_}


def test_authorize_known_unknown_blocked_expired(live_server_ws, station_factory):
    station_factory("CS-1")
    fleet = IdToken.objects.create(id_token="FLEET-1", type="Central")
    IdToken.objects.create(id_token="AABBCC01", type="ISO14443", group_id_token=fleet, language="de")
    IdToken.objects.create(id_token="BLOCKED01", type="ISO14443", status="Blocked")
    IdToken.objects.create(id_token="OLD01", type="ISO14443", expires_at=timezone.now() - timedelta(days=1))
    later = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    IdToken.objects.create(id_token="LATER01", type="ISO14443", expires_at=later, evse_ids=[2, 1])
    IdToken.objects.create(id_token="EMAID-1", type="eMAID")

    replies = authorize_all(
        live_server_ws,
        "CS-1",
        [
            {"idToken": token("AABBCC01")},
            {"idToken": token("aabbcc01")},  # idTokens are case insensitive
            {"idToken": token("NOBODY")},
            {"idToken": token("BLOCKED01")},
            {"idToken": token("OLD01")},
            {"idToken": token("LATER01")},
            {"idToken": token("AABBCC01", "Central")},  # same string, other type: another token
            {"idToken": token("EMAID-1", "eMAID"), "iso15118CertificateHashData": HASH_DATA},
            {"idToken": token("NOBODY-2", "eMAID"), "iso15118CertificateHashData": HASH_DATA},
            {"idToken": token("", "NoAuthorization")},
        ],
    )
    group = {"idToken": "FLEET-1", "type": "Central"}
    assert replies == [
        [3, "a0", {"idTokenInfo": {"status": "Accepted", "groupIdToken": group, "language1": "de"}}],
        [3, "a1", {"idTokenInfo": {"status": "Accepted", "groupIdToken": group, "language1": "de"}}],
        [3, "a2", {"idTokenInfo": {"status": "Unknown"}}],
        [3, "a3", {"idTokenInfo": {"status": "Blocked"}}],
        [3, "a4", {"idTokenInfo": {"status": "Expired"}}],
        [
            3,
            "a5",
            {"idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": format_ocpp(later), "evseId": [1, 2]}},
        ],
        [3, "a6", {"idTokenInfo": {"status": "Unknown"}}],
        # Hash data of an issuer that is no trusted root: the certificate is refused whatever the token's status.
        [3, "a7", {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "CertChainError"}],
        [3, "a8", {"idTokenInfo": {"status": "Unknown"}, "certificateStatus": "CertChainError"}],
        [3, "a9", {"idTokenInfo": {"status": "Accepted"}}],
    ]


def test_blocked_group_blocks_its_members(live_server_ws, station_factory):
    station_factory("CS-1")
    fleet = IdToken.objects.create(id_token="FLEET-2", type="Central", status="Blocked")
    IdToken.objects.create(id_token="MEMBER-2", type="ISO14443", group_id_token=fleet)
    [reply] = authorize_all(live_server_ws, "CS-1", [{"idToken": token("MEMBER-2")}])
    assert reply == [
        3,
        "a0",
        {"idTokenInfo": {"status": "Blocked", "groupIdToken": {"idToken": "FLEET-2", "type": "Central"}}},
    ]


@pytest.mark.parametrize(("policy", "status"), [("accept", "Accepted"), ("Invalid", "Invalid")])
def test_unknown_token_policy(csms_server, station_factory, policy, status):
    station_factory("CS-1")
    server = csms_server(f"tokens-{policy}", CSMS_UNKNOWN_ID_TOKEN_POLICY=policy)
    IdToken.objects.create(id_token="BLOCKED01", type="ISO14443", status="Blocked")
    replies = authorize_all(server, "CS-1", [{"idToken": token("NOBODY")}, {"idToken": token("BLOCKED01")}])
    assert replies == [
        [3, "a0", {"idTokenInfo": {"status": status}}],
        [3, "a1", {"idTokenInfo": {"status": "Blocked"}}],  # the policy is for unknown tokens only
    ]
