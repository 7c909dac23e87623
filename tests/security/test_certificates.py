"""Certificates (blocks A and M): SignCertificate → CertificateSigned signed by the CSMS's CA, bad CSRs refused,
the station's certificate inventory, renewal before expiry, revocation and the CRL."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from security import ca, certificates
from security.models import CertificateRequest, InstalledCertificate
from stations.models import ChargingStation, Command
from tests.conftest import in_thread
from tests.ocpp_client import run
from tests.security import pki
from tests.stations.helpers import wait_online

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ca_dir(settings: Any, tmp_path: Path) -> Any:
    """A CA generated for this test under its own directory (as under var/ca/ in production)."""
    settings.CSMS_CA_DIR = tmp_path / "ca"
    settings.CSMS_CA_KEY_PATH = settings.CSMS_CA_CERT_PATH = ""
    settings.CSMS_CA_CRL_PATH = str(tmp_path / "ca" / "crl.pem")
    ca.reset_cache()
    yield tmp_path / "ca"
    ca.reset_cache()


async def until(predicate: Any, timeout_s: float = 10) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if value := await in_thread(predicate):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def sign_and_collect(st: Any, csr: str, message_id: str = "sign-1") -> tuple[list[Any], list[Any]]:
    """Send SignCertificate; return its CALLRESULT and the CertificateSigned CALL (in whichever order they come)."""
    await st.send_raw(json.dumps([2, message_id, "SignCertificate", {"csr": csr}]))
    reply = call = None
    while reply is None or call is None:
        frame = await st.recv(10)
        if frame[0] == 3 and frame[1] == message_id:
            reply = frame
        elif frame[0] == 2 and frame[2] == "CertificateSigned":
            call = frame
        else:
            raise AssertionError(frame)
    return reply, call


@pytest.mark.live
def test_csr_round_trip_certificate_signed_verifies_against_the_ca(live_server_ws, station_factory, settings):
    station_factory("CS-CERT")
    ca_dir = Path(settings.CSMS_CA_DIR)  # the test suite's CA, shared with the servers under test
    key = pki.ec_key()
    csr = pki.csr_pem("CS-CERT", key=key)

    async def scenario() -> tuple[list[Any], list[Any]]:
        async with live_server_ws.station("CS-CERT") as st:
            await st.boot()
            await wait_online("CS-CERT")
            reply, call = await sign_and_collect(st, csr)
            await st.send_raw(json.dumps([3, call[1], {"status": "Accepted"}]))
            await until(lambda: CertificateRequest.objects.filter(state="installed").exists())
            return reply, call

    reply, call = run(scenario())
    assert reply[2] == {"status": "Accepted"}
    assert call[3]["certificateType"] == "ChargingStationCertificate"
    [leaf] = x509.load_pem_x509_certificates(call[3]["certificateChain"].encode())
    authority = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    leaf.verify_directly_issued_by(authority)  # raises unless the CSMS's CA signed it
    assert leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "CS-CERT"
    assert leaf.public_key() == key.public_key()
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    row = CertificateRequest.objects.get()
    assert (row.state, row.station_status, row.serial_number) == (
        "installed",
        "Accepted",
        format(leaf.serial_number, "x"),
    )
    assert row.not_after == leaf.not_valid_after_utc
    assert row.command is not None and row.command.action == "CertificateSigned" and row.command.state == "answered"
    # The CRL exists from the CA's first use (nginx needs one before any revocation) and is signed by the CA.
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.is_signature_valid(authority.public_key())  # type: ignore[arg-type]


def test_bad_csrs_are_rejected_with_the_reason_and_nothing_is_sent(asgi_server, station_factory, ca_dir, settings):
    settings.CSMS_CSR_ORGANIZATION = "CSMS"
    station_factory("CS-BAD")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cases = {
        "cn": pki.csr_pem("SOMEONE-ELSE"),
        "signature": pki.csr_with_bad_signature("CS-BAD"),
        "weak": pki.csr_pem("CS-BAD", key=weak),
        "garbage": "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n",
        "dsa": pki.dsa_csr("CS-BAD"),
        "organisation": pki.csr_pem("CS-BAD", o="Other Org"),
    }

    async def scenario() -> dict[str, Any]:
        async with asgi_server.station("CS-BAD") as st:
            await st.boot()
            out = {name: await st.call("SignCertificate", {"csr": csr}) for name, csr in cases.items()}
            out["v2g"] = await st.call(
                "SignCertificate", {"csr": pki.csr_pem("CS-BAD"), "certificateType": "V2GCertificate"}
            )
            return out

    replies = run(scenario())
    reasons = {name: reply[2]["statusInfo"]["additionalInfo"] for name, reply in replies.items()}
    assert {reply[2]["status"] for reply in replies.values()} == {"Rejected"}
    assert reasons == {
        "cn": "the CSR's CN 'SOMEONE-ELSE' is not the station's identity 'CS-BAD'",
        "signature": "the CSR's signature does not verify with its public key",
        "weak": "RSA key of 1024 bits: at least 2048 are required",
        "garbage": "the CSR is not a PEM-encoded PKCS#10 certificate request",
        "dsa": "DSAPublicKey keys are not allowed: RSA or EC only",
        "organisation": "the CSR's organisation (O) 'Other Org' is not 'CSMS'",
        "v2g": "no V2G PKI is configured (CSMS_V2G_PKI_URL): V2G certificates are not issued",
    }
    rows = CertificateRequest.objects.order_by("pk")
    assert [(r.state, r.reason) for r in rows] == [("rejected", reason) for reason in reasons.values()]
    assert not Command.objects.filter(action="CertificateSigned").exists()


def test_a_station_rejecting_certificate_signed_is_recorded(asgi_server, station_factory, ca_dir):
    station_factory("CS-REJ")

    async def scenario() -> None:
        async with asgi_server.station("CS-REJ") as st:
            await st.boot()
            await wait_online("CS-REJ")
            reply, call = await sign_and_collect(st, pki.csr_pem("CS-REJ", key=rsa.generate_private_key(65537, 2048)))
            assert reply[2] == {"status": "Accepted"}
            answer = {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidChain", "additionalInfo": "no root"}}
            await st.send_raw(json.dumps([3, call[1], answer]))
            await until(lambda: CertificateRequest.objects.filter(state="station_rejected").exists())

    run(scenario())
    row = CertificateRequest.objects.get()
    assert (row.station_status, row.reason) == ("Rejected", "InvalidChain no root")
    assert certificates.certificate_issue(request_id=row.pk) is None  # a repeated job sends nothing again
    assert Command.objects.filter(action="CertificateSigned").count() == 1


@pytest.mark.live
def test_certificate_signed_refused_with_a_callerror_ends_the_request_failed(asgi_server, station_factory, ca_dir):
    station_factory("CS-ERR")

    async def scenario() -> None:
        async with asgi_server.station("CS-ERR") as st:
            await st.boot()
            await wait_online("CS-ERR")
            reply, call = await sign_and_collect(st, pki.csr_pem("CS-ERR", key=rsa.generate_private_key(65537, 2048)))
            assert reply[2] == {"status": "Accepted"}
            await st.send_raw(json.dumps([4, call[1], "InternalError", "secure storage full", {}]))
            await until(lambda: CertificateRequest.objects.filter(state="failed").exists())

    run(scenario())
    row = CertificateRequest.objects.get()
    assert (row.state, row.reason, row.station_status) == (
        "failed",
        "CertificateSigned: InternalError secure storage full",
        "",
    )
    assert row.command is not None and row.command.state == "failed"


def test_certificate_signed_without_an_answer_in_time_ends_the_request_failed(station_factory):
    from stations.commands import commands_expire_stale

    station = station_factory("CS-TMO")
    command = Command.objects.create(
        station=station, action="CertificateSigned", request={"certificateChain": "x"}, state="sent"
    )
    Command.objects.filter(pk=command.pk).update(created_at=timezone.now() - timedelta(hours=1))
    row = CertificateRequest.objects.create(station=station, csr="csr", state="sent", command=command)
    answered = Command.objects.create(station=station, action="CertificateSigned", request={}, state="answered")
    installed = CertificateRequest.objects.create(station=station, csr="csr", state="installed", command=answered)

    assert commands_expire_stale(older_than_s=60) == 1

    row.refresh_from_db()
    assert (row.state, row.reason) == ("failed", "CertificateSigned: no answer in time")
    installed.refresh_from_db()
    assert installed.state == "installed"  # only a request still waiting for its answer ends


def _admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("certadmin", password="x" * 20))
    return client


def test_inventory_refresh_install_and_delete_through_the_api(asgi_server, station_factory):
    station_factory("CS-INV")
    client = _admin_client()
    root_key = pki.ec_key()
    root = pki.certificate("Operator Root", key=root_key, ca=True)
    chain_entry = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "AA" * 32,
        "issuerKeyHash": "bb" * 32,
        "serialNumber": "1F",
    }
    child = {"hashAlgorithm": "SHA256", "issuerNameHash": "cc" * 32, "issuerKeyHash": "dd" * 32, "serialNumber": "2"}
    csms_root = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "ee" * 32,
        "issuerKeyHash": "ff" * 32,
        "serialNumber": "3",
    }
    base = "/api/v1/stations/CS-INV/certificates/"

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with asgi_server.station("CS-INV") as st:
            await st.boot()
            await wait_online("CS-INV")
            response = await in_thread(lambda: client.post(base + "refresh/", {}, content_type="application/json"))
            assert response.status_code == 202, response.content
            frame = await st.recv()
            out["get_ids"] = frame
            reported = [
                {
                    "certificateType": "V2GCertificateChain",
                    "certificateHashData": chain_entry,
                    "childCertificateHashData": [child],
                },
                {"certificateType": "CSMSRootCertificate", "certificateHashData": csms_root},
            ]
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted", "certificateHashDataChain": reported}]))
            await until(lambda: InstalledCertificate.objects.count() == 3)
            out["listed"] = (await in_thread(lambda: client.get(base))).json()
            body = {"certificate_type": "MORootCertificate", "certificate": pki.pem(root)}
            response = await in_thread(lambda: client.post(base, body, content_type="application/json"))
            assert response.status_code == 202, response.content
            frame = await st.recv()
            out["install"] = frame
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
            await until(lambda: InstalledCertificate.objects.filter(certificate_type="MORootCertificate").exists())
            csms_row = await in_thread(lambda: InstalledCertificate.objects.get(certificate_type="CSMSRootCertificate"))
            response = await in_thread(lambda: client.delete(f"{base}{csms_row.pk}/"))
            assert response.status_code == 202, response.content
            frame = await st.recv()
            out["delete"] = frame
            await st.send_raw(json.dumps([3, frame[1], {"status": "Accepted"}]))
            await until(lambda: not InstalledCertificate.objects.filter(pk=csms_row.pk).exists())
            bad = {"certificate_type": "MORootCertificate", "certificate": "not a certificate"}
            out["bad_install"] = await in_thread(lambda: client.post(base, bad, content_type="application/json"))
        return out

    out = run(scenario())
    assert out["get_ids"][2:] == ["GetInstalledCertificateIds", {}]
    listed = {(r["certificate_type"], r["serial_number"], r["parent"] is not None) for r in out["listed"]["results"]}
    assert listed == {
        ("V2GCertificateChain", "1f", False),
        ("V2GCertificateChain", "2", True),
        ("CSMSRootCertificate", "3", False),
    }
    assert out["install"][2] == "InstallCertificate" and out["install"][3]["certificateType"] == "MORootCertificate"
    assert out["delete"][2:] == ["DeleteCertificate", {"certificateHashData": csms_root}]
    assert out["bad_install"].status_code == 400
    installed = InstalledCertificate.objects.get(certificate_type="MORootCertificate")
    assert installed.hash_data() == certificates.hash_data_of(root)
    assert (installed.source, installed.subject) == ("installed", "CN=Operator Root")
    assert set(InstalledCertificate.objects.values_list("certificate_type", flat=True)) == {
        "V2GCertificateChain",
        "MORootCertificate",
    }


def _installed(station: ChargingStation, days_left: int, serial: str) -> CertificateRequest:
    now = timezone.now()
    return CertificateRequest.objects.create(
        station=station,
        csr="-",
        state="installed",
        serial_number=serial,
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=days_left),
    )


def test_renewal_job_triggers_sign_certificate_before_expiry_once(station_factory, settings):
    settings.CSMS_CERT_RENEW_BEFORE_DAYS = 30
    soon, later, offline = station_factory("CS-SOON"), station_factory("CS-LATER"), station_factory("CS-OFF")
    ChargingStation.objects.filter(identity__in=["CS-SOON", "CS-LATER"]).update(
        is_online=True, channel_name="specific.certs!test"
    )
    old = _installed(soon, 10, "a1")
    superseded = _installed(soon, 5, "a0")  # an older certificate of the same station and type: no second trigger
    _installed(later, 100, "b1")
    off = _installed(offline, 3, "c1")

    assert certificates.certificates_renew_due() == [old.pk]
    assert certificates.certificates_renew_due() == []  # not twice
    triggers = Command.objects.filter(action="TriggerMessage")
    assert [(c.station.identity, c.request) for c in triggers.exclude(state="offline")] == [
        ("CS-SOON", {"requestedMessage": "SignChargingStationCertificate"})
    ]
    superseded.refresh_from_db()
    off.refresh_from_db()
    assert superseded.renewal_requested_at is None and off.renewal_requested_at is None  # offline: asked later
    ChargingStation.objects.filter(identity="CS-OFF").update(is_online=True, channel_name="specific.certs!test2")
    assert certificates.certificates_renew_due() == [off.pk]


def test_revoking_a_station_certificate_writes_a_crl_listing_its_serial(station_factory, ca_dir):
    station = station_factory("CS-REV")
    csr = x509.load_pem_x509_csr(pki.csr_pem("CS-REV").encode())
    leaf = ca.sign_csr(csr, validity_days=30)
    row = _installed(station, 30, format(leaf.serial_number, "x"))
    other = _installed(station, 30, "abc123")
    client = _admin_client()
    response = client.post(f"/api/v1/stations/CS-REV/certificate-requests/{row.pk}/revoke/")
    assert response.status_code == 200, response.content
    assert response.json()["revoked_by"] == "certadmin"
    again = client.post(f"/api/v1/stations/CS-REV/certificate-requests/{row.pk}/revoke/")
    assert again.status_code == 409
    crl = x509.load_pem_x509_crl(Path(ca_dir / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.authority().certificate.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [leaf.serial_number]
    assert crl.get_revoked_certificate_by_serial_number(int(other.serial_number, 16)) is None
    # The renewal job never renews a revoked certificate.
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="specific.certs!rev")
    CertificateRequest.objects.filter(pk=other.pk).delete()
    assert certificates.certificates_renew_due() == []
    listed = client.get("/api/v1/stations/CS-REV/certificate-requests/").json()["results"]
    assert [(r["serial_number"], r["revoked_at"] is not None) for r in listed] == [(row.serial_number, True)]


def test_generated_ca_key_is_private_and_loaded_again(ca_dir):
    first = ca.authority()
    ca.reset_cache()
    second = ca.authority()
    assert first.certificate == second.certificate
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert key.public_key() == first.certificate.public_key()


def test_station_certificates_page_lists_and_sends(station_factory, ca_dir):
    station = station_factory("CS-PAGE")
    root = pki.certificate("Page Root", key=pki.ec_key(), ca=True)
    InstalledCertificate.objects.create(
        station=station,
        certificate_type="CSMSRootCertificate",
        source="reported",
        **{k: v for k, v in certificates._hash_fields(certificates.hash_data_of(root)).items()},
    )
    csr = x509.load_pem_x509_csr(pki.csr_pem("CS-PAGE").encode())
    row = _installed(station, 200, format(ca.sign_csr(csr, validity_days=200).serial_number, "x"))
    CertificateRequest.objects.create(station=station, csr="x", state="rejected", reason="the CSR's CN 'X' is wrong")
    client = _admin_client()
    html = client.get("/security/stations/CS-PAGE/certificates/").content.decode()
    assert format(root.serial_number, "x") in html and "CSMSRootCertificate" in html
    assert "the CSR&#x27;s CN &#x27;X&#x27; is wrong" in html and row.serial_number in html
    assert 'href="/security/stations/CS-PAGE/certificates/"' in client.get("/stations/CS-PAGE/").content.decode()
    response = client.post(
        "/security/stations/CS-PAGE/certificates/install/",
        {"certificate_type": "V2GRootCertificate", "certificate": pki.pem(root)},
    )
    assert response.status_code == 302 and "InstallCertificate%3A+offline" in response["Location"]
    command = Command.objects.get(action="InstallCertificate")
    assert command.request == {"certificateType": "V2GRootCertificate", "certificate": pki.pem(root)}
    response = client.post(f"/security/stations/CS-PAGE/certificate-requests/{row.pk}/revoke/")
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    crl = x509.load_pem_x509_crl(Path(ca_dir / "crl.pem").read_bytes())
    assert [r.serial_number for r in crl] == [int(row.serial_number, 16)]
    billing = Client()
    billing.force_login(User.objects.create_user("reader"))
    assert billing.post("/security/stations/CS-PAGE/certificates/install/", {}).status_code == 403


def test_inventory_answers_failed_delete_keeps_not_found_clears_any_hash_algorithm(station_factory):
    from stations.commands import command_finish, helpers

    station = station_factory("CS-HASH")
    ChargingStation.objects.filter(pk=station.pk).update(is_online=True, channel_name="specific.certs!hash")
    station.refresh_from_db()
    entries = {
        alg: {"hashAlgorithm": alg, "issuerNameHash": "ab" * n, "issuerKeyHash": "cd" * n, "serialNumber": f"{n:x}"}
        for alg, n in (("SHA256", 32), ("SHA384", 48), ("SHA512", 64))
    }

    def answer(command: Command, response: dict[str, Any]) -> None:
        command_finish(command_id=command.pk, state="answered", response=response)

    chain = [{"certificateType": "CSMSRootCertificate", "certificateHashData": e} for e in entries.values()]
    answer(helpers.get_installed_certificate_ids(station), {"status": "Accepted", "certificateHashDataChain": chain})
    assert InstalledCertificate.objects.filter(station=station).count() == 3
    rows = {r.hash_algorithm: r for r in InstalledCertificate.objects.filter(station=station)}
    failed = certificates.certificate_delete(station=station, installed_id=rows["SHA384"].pk)
    answer(failed, {"status": "Failed"})  # the station could not delete it: still listed
    assert InstalledCertificate.objects.filter(pk=rows["SHA384"].pk).exists()
    for alg in ("SHA384", "SHA512"):
        command = certificates.certificate_delete(station=station, installed_id=rows[alg].pk)
        assert command.request == {"certificateHashData": entries[alg]}
        answer(command, {"status": "Accepted"})
    assert list(InstalledCertificate.objects.values_list("hash_algorithm", flat=True)) == ["SHA256"]
    # InstallCertificate Failed (the station's store is full, say): nothing is added.
    root = pki.certificate("Refused Root", key=pki.ec_key(), ca=True)
    answer(
        certificates.certificate_install(station=station, certificate_type="MORootCertificate", pem=pki.pem(root)),
        {"status": "Failed"},
    )
    assert not InstalledCertificate.objects.filter(certificate_type="MORootCertificate").exists()
    # ManufacturerRootCertificate installed and accepted: listed with the hash data the CSMS computes.
    maker = pki.certificate("Maker Root", key=pki.ec_key(), ca=True)
    install = certificates.certificate_install(
        station=station, certificate_type="ManufacturerRootCertificate", pem=pki.pem(maker)
    )
    answer(install, {"status": "Accepted"})
    assert InstalledCertificate.objects.get(certificate_type="ManufacturerRootCertificate").hash_data() == (
        certificates.hash_data_of(maker)
    )
    # Two types asked in one request: both replaced by what the station reports.
    both = helpers.get_installed_certificate_ids(
        station, certificate_type=["CSMSRootCertificate", "ManufacturerRootCertificate"]
    )
    reported = [
        {"certificateType": "ManufacturerRootCertificate", "certificateHashData": entries["SHA512"]},
        {"certificateType": "CSMSRootCertificate", "certificateHashData": entries["SHA384"]},
    ]
    answer(both, {"status": "Accepted", "certificateHashDataChain": reported})
    assert sorted(InstalledCertificate.objects.values_list("certificate_type", "hash_algorithm")) == [
        ("CSMSRootCertificate", "SHA384"),
        ("ManufacturerRootCertificate", "SHA512"),
    ]
    # NotFound for the asked type: the station holds none of it any more; other types stay.
    InstalledCertificate.objects.create(
        station=station,
        certificate_type="MORootCertificate",
        source="reported",
        **certificates._hash_fields(entries["SHA512"]),
    )
    answer(
        helpers.get_installed_certificate_ids(station, certificate_type=["CSMSRootCertificate"]), {"status": "NotFound"}
    )
    assert sorted(InstalledCertificate.objects.values_list("certificate_type", flat=True)) == [
        "MORootCertificate",
        "ManufacturerRootCertificate",
    ]


def test_ca_init_command_creates_the_ca_and_an_empty_crl(ca_dir):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("ca_init", stdout=out)
    assert out.getvalue().splitlines() == [
        f"CA certificate: {ca_dir / 'ca.pem'}",
        f"CRL: {ca_dir / 'crl.pem'}",
        f"CA key (generated, mode 0600): {ca_dir / 'ca.key'}",
    ]
    authority = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl.issuer == authority.subject and len(list(crl)) == 0
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
