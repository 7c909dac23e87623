"""The CSMS's certificate authority: signs station certificates (SignCertificate) and keeps the CRL of revoked ones.

Key and certificate come from ``CSMS_CA_KEY_PATH`` / ``CSMS_CA_CERT_PATH`` (PEM files the operator provides), or,
when those are empty, are generated once under ``CSMS_CA_DIR`` (``var/ca/``: ``ca.key`` mode 0600, ``ca.pem``)
by whichever process needs them first (a file lock orders several processes). Never in the repository.
The CRL (``CSMS_CA_CRL_PATH``, PEM) is rewritten atomically at every revocation and by the daily beat job, and
written when the CA is created, so a TLS terminator (nginx ``ssl_crl``) always finds a current one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CA_VALIDITY_DAYS = 3650

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class Authority:
    key: SigningKey
    certificate: x509.Certificate
    key_path: Path
    cert_path: Path

    @property
    def is_root(self) -> bool:
        return self.certificate.issuer == self.certificate.subject

    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


_lock = threading.Lock()
_cached: Authority | None = None
_cached_paths: tuple[str, str] | None = None


def _paths() -> tuple[Path, Path]:
    key, cert = settings.CSMS_CA_KEY_PATH, settings.CSMS_CA_CERT_PATH
    if bool(key) != bool(cert):
        raise ImproperlyConfigured("CSMS_CA_KEY_PATH and CSMS_CA_CERT_PATH are set together, or neither")
    if key:
        return Path(key), Path(cert)
    ca_dir = Path(settings.CSMS_CA_DIR)
    return ca_dir / "ca.key", ca_dir / "ca.pem"


def _generate(key_path: Path, cert_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.CSMS_CA_ORGANIZATION or "CSMS"),
            x509.NameAttribute(NameOID.COMMON_NAME, "CSMS Charging Station CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def authority() -> Authority:
    """The CA (loaded once per process; generated on first use when no files are configured)."""
    global _cached, _cached_paths
    key_path, cert_path = _paths()
    with _lock:
        if _cached is not None and _cached_paths == (str(key_path), str(cert_path)):
            return _cached
        generated = False
        if not settings.CSMS_CA_KEY_PATH:
            key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(key_path.parent / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # several processes starting at once generate one CA
                if not key_path.exists():
                    _generate(key_path, cert_path)
                    generated = True
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ImproperlyConfigured(f"the CSMS CA cannot be loaded from {key_path} / {cert_path}: {exc}") from exc
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ImproperlyConfigured(f"the CSMS CA key {key_path} is neither RSA nor EC")
        _cached, _cached_paths = Authority(key, cert, key_path, cert_path), (str(key_path), str(cert_path))
    if generated or not Path(settings.CSMS_CA_CRL_PATH).exists():
        from . import certificates  # the revoked serials live in the database

        certificates.crl_refresh()
    return _cached


def reset_cache() -> None:
    """Forget the loaded CA (tests switching CA files)."""
    global _cached, _cached_paths
    with _lock:
        _cached, _cached_paths = None, None


def sign_csr(csr: x509.CertificateSigningRequest, *, validity_days: int, client_auth: bool = True) -> x509.Certificate:
    """Issue a certificate for an already validated CSR: its subject and public key, this CA's signature."""
    ca = authority()
    now = datetime.now(UTC)
    not_after = min(now + timedelta(days=validity_days), ca.certificate.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(csr.public_key(), rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=isinstance(csr.public_key(), ec.EllipticCurvePublicKey),
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if client_auth:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def chain_pem(cert: x509.Certificate) -> str:
    """The certificateChain sent to the station: the certificate, and the CA's when the CA is an intermediate
    (a station holds the root, installed as its trust anchor, but not an intermediate)."""
    ca = authority()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return pem if ca.is_root else pem + ca.certificate_pem()


def crl_build(
    revoked: Iterable[tuple[int, datetime]], *, now: datetime | None = None
) -> x509.CertificateRevocationList:
    ca = authority()
    now = now or datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=settings.CSMS_CA_CRL_VALIDITY_DAYS))
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
    )
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def crl_write(crl: x509.CertificateRevocationList) -> Path:
    """Write the CRL (PEM) atomically to CSMS_CA_CRL_PATH: a reader never sees half a file."""
    path = Path(settings.CSMS_CA_CRL_PATH)
    _write_atomic(path, crl.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return path
