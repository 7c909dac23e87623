"""Certificate management (blocks A and M): station CSRs signed by the CSMS's CA, the per-station certificate
inventory, renewal and revocation, and the Plug & Charge policy (ISO 15118 contract certificates).

Policy (configuration, see README "Certificates"):
- SignCertificate ChargingStationCertificate: the CSR must parse, carry a valid signature, CN = the station's
  identity, O = ``CSMS_CSR_ORGANIZATION`` (when set), an RSA key of >= ``CSMS_CSR_MIN_RSA_BITS`` bits or an EC key
  on one of ``CSMS_CSR_EC_CURVES``. Accepted: a Celery job (on commit) signs it and sends CertificateSigned.
- SignCertificate V2GCertificate: forwarded to the external V2G PKI (``CSMS_V2G_PKI_URL``) by the same job;
  without one, Rejected with the reason.
- Get15118EVCertificate: forwarded to the V2G PKI; without one ``Failed`` with an empty ``exiResponse``.
- GetCertificateStatus: an OCSP request built from the hash data, POSTed to ``CSMS_OCSP_RESPONDER_URL``; without
  one (or when it fails) ``Failed``.
- Authorize with contract certificate data: see :func:`certificate_status_for`.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stations.commands import CommandValidationError, helpers
from stations.models import ChargingStation, Command, CommandState

from . import ca
from .models import (
    CertificateRequest,
    CertificateRequestState,
    CertificateSigningUse,
    InstalledCertificate,
    InstalledCertificateSource,
    InstalledCertificateUse,
    TrustedRootCertificate,
)

logger = logging.getLogger(__name__)

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
MAX_PKI_RESPONSE_BYTES = 64 * 1024
RENEWAL_TRIGGER: dict[str, helpers.MessageTriggerEnumType] = {
    CertificateSigningUse.CHARGING_STATION.value: "SignChargingStationCertificate",
    CertificateSigningUse.V2G.value: "SignV2GCertificate",
}


# --- CSR validation and SignCertificate ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CsrCheck:
    csr: x509.CertificateSigningRequest | None
    reason: str = ""


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def csr_check(*, pem: str, identity: str, certificate_type: str) -> CsrCheck:
    """Validate a station's CSR against the policy; the parsed CSR, or None and the reason."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        return CsrCheck(None, "the CSR is not a PEM-encoded PKCS#10 certificate request")
    try:
        signature_ok = csr.is_signature_valid
    except Exception:  # an unsupported signature algorithm
        signature_ok = False
    if not signature_ok:
        return CsrCheck(None, "the CSR's signature does not verify with its public key")
    cn = _attr(csr.subject, NameOID.COMMON_NAME)
    if certificate_type == CertificateSigningUse.CHARGING_STATION and cn != identity:
        return CsrCheck(None, f"the CSR's CN {cn!r} is not the station's identity {identity!r}")
    required_o = settings.CSMS_CSR_ORGANIZATION
    org = _attr(csr.subject, NameOID.ORGANIZATION_NAME)
    if required_o and org != required_o:
        return CsrCheck(None, f"the CSR's organisation (O) {org!r} is not {required_o!r}")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < settings.CSMS_CSR_MIN_RSA_BITS:
            return CsrCheck(
                None, f"RSA key of {key.key_size} bits: at least {settings.CSMS_CSR_MIN_RSA_BITS} are required"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in settings.CSMS_CSR_EC_CURVES:
            allowed = ", ".join(sorted(settings.CSMS_CSR_EC_CURVES))
            return CsrCheck(None, f"EC key on {key.curve.name}: allowed curves are {allowed}")
    else:
        return CsrCheck(None, f"{type(key).__name__.removeprefix('_')} keys are not allowed: RSA or EC only")
    return CsrCheck(csr)


@dataclass(frozen=True, slots=True)
class SignAnswer:
    status: str
    reason: str = ""


def sign_certificate_request(*, station_id: int, csr_pem: str, certificate_type: str | None) -> SignAnswer:
    """Record a station's SignCertificate and decide; an accepted CSR is issued and sent by a job after commit."""
    certificate_type = certificate_type or CertificateSigningUse.CHARGING_STATION
    identity = ChargingStation.objects.filter(pk=station_id).values_list("identity", flat=True).get()
    reason = ""
    if certificate_type == CertificateSigningUse.V2G and not settings.CSMS_V2G_PKI_URL:
        # OCPP SPEC-SILENT: the CSMS's own CA signs only station (client) certificates; V2G certificates belong to
        # the V2G PKI. Without one configured the CSR is refused rather than signed by a CA no EV trusts.
        reason = "no V2G PKI is configured (CSMS_V2G_PKI_URL): V2G certificates are not issued"
    else:
        reason = csr_check(pem=csr_pem, identity=identity, certificate_type=certificate_type).reason
    row = CertificateRequest.objects.create(
        station_id=station_id,
        certificate_type=certificate_type,
        csr=csr_pem,
        state=CertificateRequestState.REJECTED if reason else CertificateRequestState.ACCEPTED,
        reason=reason[:255],
    )
    if reason:
        return SignAnswer("Rejected", reason)
    from .tasks import certificate_issue_task

    transaction.on_commit(lambda: certificate_issue_task.delay(row.pk))
    return SignAnswer("Accepted")


def _pki_post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to the V2G PKI and parse its JSON answer (raises OSError/ValueError on any failure)."""
    request = urllib.request.Request(
        f"{settings.CSMS_V2G_PKI_URL}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=settings.CSMS_PKI_TIMEOUT_S) as response:  # noqa: S310
        answer = json.loads(response.read(MAX_PKI_RESPONSE_BYTES))
    if not isinstance(answer, dict):
        raise ValueError("the V2G PKI's answer is not a JSON object")
    return answer


def certificate_issue(*, request_id: int) -> Command | None:
    """Issue the certificate of an accepted CSR and send CertificateSigned (once: a repeated job does nothing)."""
    with transaction.atomic():
        row = (
            CertificateRequest.objects.select_for_update()
            .select_related("station")
            .filter(pk=request_id, state=CertificateRequestState.ACCEPTED, command__isnull=True)
            .first()
        )
        if row is None:
            return None
        if row.certificate_type == CertificateSigningUse.V2G:
            try:
                chain = str(_pki_post("/csr", {"csr": row.csr, "identity": row.station.identity})["certificateChain"])
                first = x509.load_pem_x509_certificates(chain.encode())[0]
            except (OSError, ValueError, KeyError, IndexError) as exc:
                row.state, row.reason = CertificateRequestState.FAILED, f"the V2G PKI failed: {exc}"[:255]
                row.save(update_fields=["state", "reason", "updated_at"])
                return None
        else:
            csr = x509.load_pem_x509_csr(row.csr.encode())
            first = ca.sign_csr(csr, validity_days=settings.CSMS_CERT_VALIDITY_DAYS)
            chain = ca.chain_pem(first)
        row.certificate_pem = chain
        row.serial_number = format(first.serial_number, "x")
        row.subject = first.subject.rfc4514_string()[:255]
        row.not_before, row.not_after = first.not_valid_before_utc, first.not_valid_after_utc
        try:
            command = helpers.certificate_signed(
                row.station,
                certificate_chain=chain,
                certificate_type=row.certificate_type,  # type: ignore[arg-type]
            )
        except CommandValidationError as exc:  # a chain longer than the schema's 10000 characters
            row.state, row.reason = CertificateRequestState.FAILED, exc.message[:255]
            row.save()
            return None
        row.command = command
        if command.state == CommandState.OFFLINE:
            row.state, row.reason = CertificateRequestState.FAILED, "station offline: CertificateSigned not sent"
        else:
            row.state = CertificateRequestState.SENT
        row.save()
    return command


def certificate_signed_on_answered(command: Command) -> None:
    """CertificateSigned answered: Accepted installs the certificate (expiry tracked from now on), Rejected is
    recorded with the station's reason."""
    status = (command.response or {}).get("status", "")
    info = (command.response or {}).get("statusInfo") or {}
    accepted = status == "Accepted"
    CertificateRequest.objects.filter(command_id=command.pk).update(
        state=CertificateRequestState.INSTALLED if accepted else CertificateRequestState.STATION_REJECTED,
        station_status=status[:20],
        reason="" if accepted else " ".join(filter(None, [info.get("reasonCode"), info.get("additionalInfo")]))[:255],
        updated_at=timezone.now(),
    )


def certificate_signed_on_failed(command: Command) -> None:
    """CertificateSigned got a CALLERROR, a schema-invalid answer, no answer in time, or the connection closed:
    the request ends ``failed`` with the reason instead of staying ``sent``. After a timeout the station may have
    installed it all the same: its next GetInstalledCertificateIds tells; a new SignCertificate starts again."""
    if command.state == CommandState.TIMED_OUT:
        reason = "CertificateSigned: no answer in time"
    else:
        reason = "CertificateSigned: " + " ".join(filter(None, [command.error_code, command.error_description]))
    CertificateRequest.objects.filter(command_id=command.pk, state=CertificateRequestState.SENT).update(
        state=CertificateRequestState.FAILED, reason=reason[:255], updated_at=timezone.now()
    )


# --- Revocation and the CRL ---------------------------------------------------------------------------------------


def crl_refresh() -> str:
    """Rebuild the CRL from every revoked certificate the CSMS's CA issued and write it; returns its path."""
    revoked = CertificateRequest.objects.filter(
        revoked_at__isnull=False, certificate_type=CertificateSigningUse.CHARGING_STATION
    ).exclude(serial_number="")
    crl = ca.crl_build(
        (int(serial, 16), at)
        for serial, at in revoked.values_list("serial_number", "revoked_at")
        if at is not None  # always: the filter says so
    )
    return str(ca.crl_write(crl))


def certificate_revoke(*, request_id: int, user: Any = None) -> bool:
    """Revoke a certificate the CSMS issued (it enters the CRL at once); False when unknown or already revoked."""
    with transaction.atomic():
        done = (
            CertificateRequest.objects.filter(
                pk=request_id, revoked_at__isnull=True, certificate_type=CertificateSigningUse.CHARGING_STATION
            )
            .exclude(serial_number="")
            .update(revoked_at=timezone.now(), revoked_by=user if getattr(user, "pk", None) else None)
        )
        if done:
            transaction.on_commit(crl_refresh)
    return bool(done)


# --- Renewal --------------------------------------------------------------------------------------------------


def certificates_renew_due(*, now: datetime | None = None) -> list[int]:
    """Ask stations for a new CSR (TriggerMessage) for certificates expiring within CSMS_CERT_RENEW_BEFORE_DAYS:
    once per certificate (an offline station is asked at a later run), only for the station's newest installed
    certificate of its type, never for a revoked one. Returns the ids of the certificates renewed."""
    now = now or timezone.now()
    due_before = now + timedelta(days=settings.CSMS_CERT_RENEW_BEFORE_DAYS)
    due = list(
        CertificateRequest.objects.filter(
            state=CertificateRequestState.INSTALLED,
            revoked_at__isnull=True,
            renewal_requested_at__isnull=True,
            not_after__lte=due_before,
            not_after__gt=now - timedelta(days=settings.CSMS_CERT_RENEW_BEFORE_DAYS),
        )
        .order_by("station_id", "certificate_type", "-not_after")
        .values_list("pk", "station_id", "certificate_type", "not_after")
    )
    newest: dict[tuple[int, str], tuple[int, datetime]] = {}
    for pk, station_id, certificate_type, not_after in due:
        if not_after is not None:  # always: the filter says so
            newest.setdefault((station_id, certificate_type), (pk, not_after))
    renewed: list[int] = []
    for (station_id, certificate_type), (pk, not_after) in newest.items():
        newer = CertificateRequest.objects.filter(
            station_id=station_id,
            certificate_type=certificate_type,
            state__in=[CertificateRequestState.INSTALLED, CertificateRequestState.SENT],
            not_after__gt=not_after,
        ).exists()
        if newer:
            continue
        with transaction.atomic():
            row = (
                CertificateRequest.objects.select_for_update(skip_locked=True)
                .select_related("station")
                .filter(pk=pk, renewal_requested_at__isnull=True)
                .first()
            )
            if row is None:
                continue
            command = helpers.trigger_message(row.station, requested_message=RENEWAL_TRIGGER[certificate_type])
            if command.state == CommandState.OFFLINE:
                continue
            row.renewal_requested_at = now
            row.save(update_fields=["renewal_requested_at", "updated_at"])
            renewed.append(pk)
    return renewed


# --- Inventory: GetInstalledCertificateIds, InstallCertificate, DeleteCertificate ------------------------------------


def _hash_fields(data: dict[str, Any]) -> dict[str, str]:
    return {
        "hash_algorithm": data["hashAlgorithm"],
        "issuer_name_hash": data["issuerNameHash"].lower(),
        "issuer_key_hash": data["issuerKeyHash"].lower(),
        "serial_number": data["serialNumber"].lower(),
    }


def installed_ids_on_answered(command: Command) -> None:
    """GetInstalledCertificateIds answered: the station's certificates of the asked types (all types when none was
    asked) become what it reported (NotFound: none)."""
    response = command.response or {}
    if response.get("status") not in ("Accepted", "NotFound"):
        return
    types = command.request.get("certificateType") or list(InstalledCertificateUse.values)
    InstalledCertificate.objects.filter(station_id=command.station_id, certificate_type__in=types).delete()
    chains = (response.get("certificateHashDataChain") or []) if response.get("status") == "Accepted" else []
    parents: list[InstalledCertificate] = []
    children: list[tuple[int, dict[str, Any]]] = []
    seen: set[tuple[str, ...]] = set()
    for chain in chains:
        fields = _hash_fields(chain["certificateHashData"])
        key = (chain["certificateType"], *fields.values())
        if key in seen:
            continue
        seen.add(key)
        parents.append(
            InstalledCertificate(
                station_id=command.station_id,
                certificate_type=chain["certificateType"],
                source=InstalledCertificateSource.REPORTED,
                **fields,
            )
        )
        children += [(len(parents) - 1, child) for child in chain.get("childCertificateHashData") or []]
    InstalledCertificate.objects.bulk_create(parents)
    rows = []
    for index, child in children:
        parent = parents[index]
        fields = _hash_fields(child)
        key = (parent.certificate_type, *fields.values())
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            InstalledCertificate(
                station_id=command.station_id,
                certificate_type=parent.certificate_type,
                source=InstalledCertificateSource.REPORTED,
                parent=parent,
                **fields,
            )
        )
    InstalledCertificate.objects.bulk_create(rows)


def hash_data_of(cert: x509.Certificate, issuer: x509.Certificate | None = None, algorithm: str = "SHA256") -> dict:
    """CertificateHashDataType of a certificate (its issuer's name and key hashes, as in OCSP). A self-signed
    certificate is its own issuer."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer or cert, HASH_ALGORITHMS[algorithm]()).build()
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": request.issuer_name_hash.hex(),
        "issuerKeyHash": request.issuer_key_hash.hex(),
        "serialNumber": format(cert.serial_number, "x"),
    }


def certificate_install(*, station: ChargingStation, certificate_type: str, pem: str, user: Any = None) -> Command:
    """Send InstallCertificate (the answer hook adds it to the inventory when Accepted). Raises ValueError for a
    PEM that is not one certificate."""
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValueError("certificate: not a PEM-encoded X.509 certificate") from exc
    return helpers.install_certificate(
        station,
        certificate_type=certificate_type,  # type: ignore[arg-type]
        certificate=pem,
        user=user,
    )


def install_on_answered(command: Command) -> None:
    if (command.response or {}).get("status") != "Accepted":
        return
    cert = x509.load_pem_x509_certificate(command.request["certificate"].encode())
    self_signed = cert.issuer == cert.subject
    fields = _hash_fields(hash_data_of(cert)) if self_signed else {}
    if not fields:
        # OCPP SPEC-SILENT: the issuer key of a non-self-signed certificate is unknown here; its hash data is
        # learnt from the next GetInstalledCertificateIds (the station page's "refresh").
        return
    lookup: dict[str, Any] = {
        "station_id": command.station_id,
        "certificate_type": command.request["certificateType"],
        **fields,
    }
    InstalledCertificate.objects.update_or_create(
        **lookup,
        defaults={
            "source": InstalledCertificateSource.INSTALLED,
            "subject": cert.subject.rfc4514_string()[:255],
            "not_after": cert.not_valid_after_utc,
        },
    )


def certificate_delete(*, station: ChargingStation, installed_id: int, user: Any = None) -> Command:
    row = InstalledCertificate.objects.get(pk=installed_id, station=station)
    return helpers.delete_certificate(station, certificate_hash_data=row.hash_data(), user=user)


def delete_on_answered(command: Command) -> None:
    """DeleteCertificate Accepted (or NotFound: the station does not hold it): it leaves the inventory."""
    if (command.response or {}).get("status") not in ("Accepted", "NotFound"):
        return
    InstalledCertificate.objects.filter(
        station_id=command.station_id, **_hash_fields(command.request["certificateHashData"])
    ).delete()


# --- Trusted roots ----------------------------------------------------------------------------------------------


def trusted_root_add(*, certificate_type: str, pem: str, name: str = "") -> TrustedRootCertificate:
    """Store a Plug & Charge root the operator trusts. Raises ValueError for a PEM that is not a CA certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ValueError("pem: not a PEM-encoded X.509 certificate") from exc
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    root, _ = TrustedRootCertificate.objects.update_or_create(
        fingerprint_sha256=fingerprint,
        defaults={
            "certificate_type": certificate_type,
            "name": name,
            "pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "subject": cert.subject.rfc4514_string()[:255],
            "not_after": cert.not_valid_after_utc,
        },
    )
    return root


def _trusted_roots() -> list[x509.Certificate]:
    roots = []
    for pem in TrustedRootCertificate.objects.values_list("pem", flat=True):
        try:
            roots.append(x509.load_pem_x509_certificate(pem.encode()))
        except ValueError:
            logger.warning("a trusted root certificate does not parse; ignored")
    return roots


# --- OCSP ---------------------------------------------------------------------------------------------------------


class OcspError(Exception):
    """No usable answer from the OCSP responder."""


def ocsp_request_der(data: dict[str, Any]) -> bytes:
    """The DER OCSP request for one OCSPRequestDataType / CertificateHashDataType (ValueError if malformed)."""
    algorithm = HASH_ALGORITHMS.get(data.get("hashAlgorithm", ""))
    if algorithm is None:
        raise ValueError(f"hash algorithm {data.get('hashAlgorithm')!r} is not SHA256, SHA384 or SHA512")
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            bytes.fromhex(data["issuerNameHash"]),
            bytes.fromhex(data["issuerKeyHash"]),
            int(data["serialNumber"], 16),
            algorithm(),
        )
        .build()
    )
    return request.public_bytes(serialization.Encoding.DER)


def ocsp_post(der: bytes) -> bytes:
    """POST an OCSP request to CSMS_OCSP_RESPONDER_URL (RFC 6960 over HTTP) with the PKI timeout; the DER answer.

    Runs in the station path's database threads or a job, never in the event loop."""
    url = settings.CSMS_OCSP_RESPONDER_URL
    if not url:
        raise OcspError("no OCSP responder is configured (CSMS_OCSP_RESPONDER_URL)")
    request = urllib.request.Request(url, data=der, headers={"Content-Type": "application/ocsp-request"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=settings.CSMS_PKI_TIMEOUT_S) as response:  # noqa: S310
            return bytes(response.read(MAX_PKI_RESPONSE_BYTES))
    except (OSError, urllib.error.URLError) as exc:
        raise OcspError(f"the OCSP responder did not answer: {exc}") from exc


def _signature_verifies(key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def ocsp_certificate_status(data: dict[str, Any], *, roots: list[x509.Certificate]) -> str:
    """The verified OCSP status of one certificate: ``good``, ``revoked`` or ``unknown``. Raises OcspError when
    the responder gives no usable, trusted answer. The answer must be signed by a trusted root or by a responder
    certificate (carried in the answer) that a trusted root issued."""
    try:
        der = ocsp_request_der(data)
    except (ValueError, KeyError) as exc:
        raise OcspError(f"malformed certificate hash data: {exc}") from exc
    body = ocsp_post(der)
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise OcspError("the OCSP responder's answer is not an OCSP response") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"the OCSP responder answered {response.response_status.name}")
    signer = None
    for candidate in [*roots, *response.certificates]:
        if _signature_verifies(
            candidate.public_key(), response.signature, response.tbs_response_bytes, response.signature_hash_algorithm
        ):
            signer = candidate
            break
    trusted = signer is not None and (signer in roots or any(_issued_by(signer, root) for root in roots))
    if not trusted:
        raise OcspError("the OCSP response is not signed by a trusted responder")
    for single in response.responses:
        if (
            single.serial_number == int(data["serialNumber"], 16)
            and single.issuer_name_hash.hex() == data["issuerNameHash"].lower()
            and single.issuer_key_hash.hex() == data["issuerKeyHash"].lower()
        ):
            if single.next_update_utc is not None and single.next_update_utc < datetime.now(UTC):
                raise OcspError("the OCSP response is out of date")
            return single.certificate_status.name.lower()
    raise OcspError("the OCSP response does not answer for this certificate")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# --- Plug & Charge: GetCertificateStatus, Get15118EVCertificate, Authorize -----------------------------------------


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    status: str
    reason: str = ""
    ocsp_result: str | None = None


def certificate_status_get(*, ocsp_request_data: dict[str, Any]) -> StatusAnswer:
    """GetCertificateStatus: the OCSP responder's answer (DER, base64) for the station to check itself; Failed
    without a responder or when it fails. The station verifies the response (it holds the V2G root)."""
    try:
        der = ocsp_request_der(ocsp_request_data)
    except (ValueError, KeyError) as exc:
        return StatusAnswer("Failed", f"malformed ocspRequestData: {exc}")
    try:
        body = ocsp_post(der)
        response = ocsp.load_der_ocsp_response(body)
    except OcspError as exc:
        return StatusAnswer("Failed", str(exc))
    except ValueError:
        return StatusAnswer("Failed", "the OCSP responder's answer is not an OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return StatusAnswer("Failed", f"the OCSP responder answered {response.response_status.name}")
    encoded = base64.b64encode(body).decode()
    if len(encoded) > 5500:
        return StatusAnswer("Failed", "the OCSP response is longer than OCPP's 5500 characters")
    return StatusAnswer("Accepted", ocsp_result=encoded)


@dataclass(frozen=True, slots=True)
class EvCertificateAnswer:
    status: str
    exi_response: str
    reason: str = ""


def ev_certificate_get(*, identity: str, schema_version: str, action: str, exi_request: str) -> EvCertificateAnswer:
    """Get15118EVCertificate: forwarded to the V2G PKI (``POST {CSMS_V2G_PKI_URL}/ev-certificate`` with
    ``{"identity", "iso15118SchemaVersion", "action", "exiRequest"}``, answered ``{"status", "exiResponse"}``);
    without one, or when it fails, ``Failed`` with an empty exiResponse (the field is required; the CSMS has no
    EXI codec to build a failure message in the EV's encoding)."""
    if not settings.CSMS_V2G_PKI_URL:
        return EvCertificateAnswer("Failed", "", "no V2G PKI is configured (CSMS_V2G_PKI_URL)")
    try:
        answer = _pki_post(
            "/ev-certificate",
            {
                "identity": identity,
                "iso15118SchemaVersion": schema_version,
                "action": action,
                "exiRequest": exi_request,
            },
        )
        status, exi = str(answer["status"]), str(answer.get("exiResponse", ""))
    except (OSError, ValueError, KeyError) as exc:
        return EvCertificateAnswer("Failed", "", f"the V2G PKI failed: {exc}"[:255])
    if status not in ("Accepted", "Failed") or len(exi) > 5600:
        return EvCertificateAnswer("Failed", "", "the V2G PKI's answer is not usable")
    return EvCertificateAnswer(status, exi)


def _root_matches(data: dict[str, Any], root: x509.Certificate) -> bool:
    algorithm = data.get("hashAlgorithm", "")
    if algorithm not in HASH_ALGORITHMS:
        return False
    ours = hash_data_of(root, algorithm=algorithm)
    return (
        ours["issuerNameHash"] == str(data.get("issuerNameHash", "")).lower()
        and ours["issuerKeyHash"] == str(data.get("issuerKeyHash", "")).lower()
    )


def _chain_status(pem: str, roots: list[x509.Certificate], now: datetime) -> tuple[str, list[dict[str, Any]]]:
    """Check a PEM contract certificate chain (leaf first): its status and the OCSP hash data of its certificates."""
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return "CertChainError", []
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return "CertificateExpired", []
    hash_data = []
    for cert, issuer in zip(chain, chain[1:], strict=False):
        if cert.issuer != issuer.subject:
            return "CertChainError", []
        if not _issued_by(cert, issuer):
            return "SignatureError", []
        hash_data.append(hash_data_of(cert, issuer))
    top = chain[-1]
    anchors = [r for r in roots if r.subject == top.issuer]
    if top in roots:
        return "Accepted", hash_data
    if not anchors:
        return "CertChainError", []
    anchor = next((r for r in anchors if _issued_by(top, r)), None)
    if anchor is None:
        return "SignatureError", []
    if not anchor.not_valid_before_utc <= now <= anchor.not_valid_after_utc:
        return "CertificateExpired", []
    hash_data.append(hash_data_of(top, anchor))
    return "Accepted", hash_data


def certificate_status_for(
    *, hash_data: list[dict[str, Any]] | None, certificate: str | None, now: datetime | None = None
) -> str:
    """Authorize's certificateStatus for the contract certificate data a station sent (never a blind Accepted).

    - ``certificate`` (PEM chain, leaf first): every certificate within its validity (else CertificateExpired),
      each signed by the next (CertChainError when names do not link, SignatureError when a signature fails), the
      last one issued by a trusted root (TrustedRootCertificate: V2GRoot/MORoot, else CertChainError).
    - ``iso15118CertificateHashData``: some entry's issuer hashes must be a trusted root's (else CertChainError).
    - then, with ``CSMS_OCSP_RESPONDER_URL``, each certificate's OCSP status: revoked → CertificateRevoked, unknown
      or no usable answer → NoCertificateAvailable; without a responder the trusted chain is Accepted.
    """
    now = now or timezone.now()
    roots = _trusted_roots()
    if certificate:
        status, to_check = _chain_status(certificate, roots, now)
        if status != "Accepted":
            return status
    else:
        to_check = [d for d in hash_data or [] if isinstance(d, dict)]
        if not any(_root_matches(d, root) for d in to_check for root in roots):
            return "CertChainError"
    if not settings.CSMS_OCSP_RESPONDER_URL:
        # OCPP SPEC-SILENT: without a responder revocation cannot be checked; the chain to a trusted root is what
        # the CSMS vouches for (documented; configure a responder for revocation checks).
        return "Accepted"
    for data in to_check:
        try:
            outcome = ocsp_certificate_status(data, roots=roots)
        except OcspError as exc:
            # OCPP SPEC-SILENT: no usable OCSP answer means the certificate's status is not available.
            logger.info("OCSP check of a contract certificate failed: %s", exc)
            return "NoCertificateAvailable"
        if outcome == "revoked":
            return "CertificateRevoked"
        if outcome != "good":
            return "NoCertificateAvailable"
    return "Accepted"
