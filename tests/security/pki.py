"""A small PKI made in the tests: keys, CSRs, CA and leaf certificates, and a real OCSP responder on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def name(cn: str, o: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if o:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o))
    return x509.Name(attrs)


def csr_pem(cn: str, *, key: Any = None, o: str | None = "CSMS") -> str:
    key = key or ec_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(name(cn, o)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def csr_with_bad_signature(cn: str) -> str:
    """A CSR whose signature does not match its content: one byte of the signature flipped."""
    csr = x509.load_pem_x509_csr(csr_pem(cn).encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    sig = csr.signature
    at = bytes(der).rindex(sig) + len(sig) - 1
    der[at] ^= 0x01
    return x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()


def dsa_csr(cn: str) -> str:
    key = dsa.generate_private_key(2048)
    csr = x509.CertificateSigningRequestBuilder().subject_name(name(cn, "CSMS")).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def certificate(
    subject: str,
    *,
    key: Key,
    issuer: x509.Certificate | None = None,
    issuer_key: Key | None = None,
    ca: bool = False,
    days: int = 365,
    not_before: datetime | None = None,
) -> x509.Certificate:
    start = not_before or datetime.now(UTC) - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(issuer.subject if issuer else name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key or key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


class OcspResponder:
    """A real OCSP responder (RFC 6960 over HTTP POST) on 127.0.0.1, signing with the issuer's key: good for every
    serial except the revoked ones."""

    def __init__(self, issuer: x509.Certificate, issuer_key: Key) -> None:
        self.issuer, self.issuer_key = issuer, issuer_key
        self.revoked: set[int] = set()
        self.requests = 0

    def answer(self, body: bytes) -> bytes:
        self.requests += 1
        request = ocsp.load_der_ocsp_request(body)
        now = datetime.now(UTC)
        revoked = request.serial_number in self.revoked
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(hours=1),
            revocation_time=now - timedelta(hours=1) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuer).sign(
            self.issuer_key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)


@contextmanager
def ocsp_server(responder: OcspResponder) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = responder.answer(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ocsp"
    finally:
        server.shutdown()
        server.server_close()
