"""ISO 15118 / Plug & Charge (block M and Authorize's certificate cases): Get15118EVCertificate and
GetCertificateStatus without and with a real OCSP responder on loopback, and Authorize's certificateStatus for
contract certificate hash data and PEM chains (unknown issuer, revoked, expired, bad signature)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.x509 import ocsp

from security import certificates
from security.models import CertificateRequest
from tests.ocpp_client import run
from tests.security import pki
from tests.stations.helpers import wait_online
from transactions.models import IdToken

pytestmark = pytest.mark.django_db(transaction=True)

EMAID = {"idToken": "DEMO1234567890", "type": "eMAID"}


class ContractPki:
    """An MO root (trusted by the operator), a sub-CA and two contract certificates, one of them revoked."""

    def __init__(self) -> None:
        self.root_key = pki.ec_key()
        self.root = pki.certificate("MO Root", key=self.root_key, ca=True, days=3650)
        self.sub_key = pki.ec_key()
        self.sub = pki.certificate("MO Sub-CA", key=self.sub_key, issuer=self.root, issuer_key=self.root_key, ca=True)
        self.good = pki.certificate("DEMO1234567890", key=pki.ec_key(), issuer=self.sub, issuer_key=self.sub_key)
        self.revoked = pki.certificate("DEMO-REVOKED", key=pki.ec_key(), issuer=self.sub, issuer_key=self.sub_key)
        self.responder = pki.OcspResponder(self.root, self.root_key)
        self.responder.revoked.add(self.revoked.serial_number)

    def hash_data(self, cert: Any, issuer: Any) -> dict[str, str]:
        return certificates.hash_data_of(cert, issuer) | {"responderURL": "http://ocsp.example.invalid/"}


@pytest.fixture
def contract_pki() -> ContractPki:
    pki_ = ContractPki()
    certificates.trusted_root_add(certificate_type="MORootCertificate", pem=pki.pem(pki_.root), name="MO root")
    return pki_


def calls(server: Any, identity: str, requests: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    async def scenario() -> list[list[Any]]:
        async with server.station(identity) as st:
            await st.boot()
            return [await st.call(action, payload, message_id=f"m{i}") for i, (action, payload) in enumerate(requests)]

    return run(scenario())


def test_without_pki_or_responder_ev_certificate_and_status_fail_with_exi_response(
    asgi_server, station_factory, contract_pki, settings
):
    settings.CSMS_V2G_PKI_URL = settings.CSMS_OCSP_RESPONDER_URL = ""
    station_factory("CS-PNC")
    hash_data = contract_pki.hash_data(contract_pki.good, contract_pki.sub)
    [ev, status] = calls(
        asgi_server,
        "CS-PNC",
        [
            (
                "Get15118EVCertificate",
                {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "gAAAAA=="},
            ),
            ("GetCertificateStatus", {"ocspRequestData": hash_data}),
        ],
    )
    assert ev[2] == {
        "status": "Failed",
        "exiResponse": "",
        "statusInfo": {"reasonCode": "Failed", "additionalInfo": "no V2G PKI is configured (CSMS_V2G_PKI_URL)"},
    }
    assert status[2] == {
        "status": "Failed",
        "statusInfo": {
            "reasonCode": "Failed",
            "additionalInfo": "no OCSP responder is configured (CSMS_OCSP_RESPONDER_URL)",
        },
    }


def test_get_certificate_status_forwards_to_the_ocsp_responder(asgi_server, station_factory, contract_pki, settings):
    station_factory("CS-OCSP")
    with pki.ocsp_server(contract_pki.responder) as url:
        settings.CSMS_OCSP_RESPONDER_URL = url
        replies = calls(
            asgi_server,
            "CS-OCSP",
            [
                (
                    "GetCertificateStatus",
                    {"ocspRequestData": contract_pki.hash_data(contract_pki.good, contract_pki.sub)},
                ),
                (
                    "GetCertificateStatus",
                    {"ocspRequestData": contract_pki.hash_data(contract_pki.revoked, contract_pki.sub)},
                ),
            ],
        )
    assert [r[2]["status"] for r in replies] == ["Accepted", "Accepted"]
    answers = [ocsp.load_der_ocsp_response(base64.b64decode(r[2]["ocspResult"])) for r in replies]
    assert [(a.serial_number, a.certificate_status) for a in answers] == [
        (contract_pki.good.serial_number, ocsp.OCSPCertStatus.GOOD),
        (contract_pki.revoked.serial_number, ocsp.OCSPCertStatus.REVOKED),
    ]
    assert contract_pki.responder.requests == 2


def authorize(server: Any, identity: str, extras: list[dict[str, Any]]) -> list[Any]:
    return [
        r[2].get("certificateStatus")
        for r in calls(server, identity, [("Authorize", {"idToken": EMAID} | e) for e in extras])
    ]


def test_authorize_hash_data_checks_the_issuer_and_asks_the_ocsp_responder(
    asgi_server, station_factory, contract_pki, settings
):
    station_factory("CS-AUTH")
    IdToken.objects.create(id_token=EMAID["idToken"], type="eMAID")
    p = contract_pki
    chain_good = [p.hash_data(p.good, p.sub), p.hash_data(p.sub, p.root)]
    chain_revoked = [p.hash_data(p.revoked, p.sub), p.hash_data(p.sub, p.root)]
    stranger_key = pki.ec_key()
    stranger = pki.certificate("Unknown Root", key=stranger_key, ca=True)
    unknown_issuer = [
        p.hash_data(pki.certificate("X", key=pki.ec_key(), issuer=stranger, issuer_key=stranger_key), stranger)
    ]
    settings.CSMS_OCSP_RESPONDER_URL = ""
    without_responder = authorize(
        asgi_server,
        "CS-AUTH",
        [{"iso15118CertificateHashData": chain_good}, {"iso15118CertificateHashData": unknown_issuer}],
    )
    assert without_responder == ["Accepted", "CertChainError"]
    with pki.ocsp_server(p.responder) as url:
        settings.CSMS_OCSP_RESPONDER_URL = url
        with_responder = authorize(
            asgi_server,
            "CS-AUTH",
            [
                {"iso15118CertificateHashData": chain_good},
                {"iso15118CertificateHashData": chain_revoked},
                {"iso15118CertificateHashData": unknown_issuer},
            ],
        )
    assert with_responder == ["Accepted", "CertificateRevoked", "CertChainError"]
    assert p.responder.requests == 3  # good: leaf and sub-CA; revoked: the leaf answers; unknown: never asked
    settings.CSMS_OCSP_RESPONDER_URL = "http://127.0.0.1:9/ocsp"  # nobody listens: the status is not available
    assert authorize(asgi_server, "CS-AUTH", [{"iso15118CertificateHashData": chain_good}]) == [
        "NoCertificateAvailable"
    ]


def test_authorize_certificate_chain_checks_expiry_signature_and_root(
    asgi_server, station_factory, contract_pki, settings
):
    settings.CSMS_OCSP_RESPONDER_URL = ""
    station_factory("CS-CHAIN")
    p = contract_pki
    expired = pki.certificate(
        "DEMO-OLD",
        key=pki.ec_key(),
        issuer=p.sub,
        issuer_key=p.sub_key,
        not_before=datetime.now(UTC) - timedelta(days=400),
        days=30,
    )
    forged = pki.certificate("DEMO-FORGED", key=pki.ec_key(), issuer=p.sub, issuer_key=pki.ec_key())  # wrong signer
    stranger_key = pki.ec_key()
    stranger = pki.certificate("Unknown Root", key=stranger_key, ca=True)
    foreign_sub = pki.certificate("Other Sub", key=pki.ec_key(), issuer=stranger, issuer_key=stranger_key, ca=True)
    statuses = authorize(
        asgi_server,
        "CS-CHAIN",
        [
            {"certificate": pki.pem(p.good, p.sub)},
            {"certificate": pki.pem(expired, p.sub)},
            {"certificate": pki.pem(forged, p.sub)},
            {"certificate": pki.pem(foreign_sub)},
            {"certificate": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"},
        ],
    )
    assert statuses == ["Accepted", "CertificateExpired", "SignatureError", "CertChainError", "CertChainError"]
    with pki.ocsp_server(p.responder) as url:
        settings.CSMS_OCSP_RESPONDER_URL = url
        assert authorize(asgi_server, "CS-CHAIN", [{"certificate": pki.pem(p.revoked, p.sub)}]) == [
            "CertificateRevoked"
        ]


@contextmanager
def v2g_pki(chain_pem: str) -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A V2G PKI on loopback speaking the documented JSON contract: /csr signs, /ev-certificate answers EXI."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body))
            if self.path == "/csr":
                answer = {"certificateChain": chain_pem}
            else:
                answer = {"status": "Accepted", "exiResponse": "gICAgA=="}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_with_a_v2g_pki_csrs_and_ev_certificates_are_forwarded(asgi_server, station_factory, settings):
    station_factory("CS-V2G")
    v2g_key = pki.ec_key()
    v2g_root = pki.certificate("V2G Root", key=v2g_key, ca=True)
    secc = pki.certificate("CS-V2G", key=pki.ec_key(), issuer=v2g_root, issuer_key=v2g_key)
    csr = pki.csr_pem("CS-V2G")

    async def scenario() -> tuple[list[Any], list[Any], list[Any]]:
        async with asgi_server.station("CS-V2G") as st:
            await st.boot()
            await wait_online("CS-V2G")
            await st.send_raw(
                json.dumps([2, "s1", "SignCertificate", {"csr": csr, "certificateType": "V2GCertificate"}])
            )
            frames = [await st.recv(), await st.recv()]
            call = next(f for f in frames if f[0] == 2)
            reply = next(f for f in frames if f[0] == 3)
            await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
            ev = await st.call(
                "Get15118EVCertificate",
                {"iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef", "action": "Install", "exiRequest": "gAAA"},
            )
            return reply, call, ev

    with v2g_pki(pki.pem(secc)) as (url, seen):
        settings.CSMS_V2G_PKI_URL = url
        reply, call, ev = run(scenario())
    assert reply[2] == {"status": "Accepted"}
    assert call[2:] == ["CertificateSigned", {"certificateChain": pki.pem(secc), "certificateType": "V2GCertificate"}]
    assert ev[2] == {"status": "Accepted", "exiResponse": "gICAgA=="}
    assert seen == [
        ("/csr", {"csr": csr, "identity": "CS-V2G"}),
        (
            "/ev-certificate",
            {
                "identity": "CS-V2G",
                "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                "action": "Install",
                "exiRequest": "gAAA",
            },
        ),
    ]
    row = CertificateRequest.objects.get()
    assert (row.certificate_type, row.serial_number) == ("V2GCertificate", format(secc.serial_number, "x"))
