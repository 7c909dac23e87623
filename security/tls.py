"""Certificates for the CSMS's own TLS endpoint: a self-signed server certificate for local use
(``manage.py tls_selfsigned``, ``make run TLS=1``). Production certificates come from the operator's PKI or ACME
(the TLS terminator of docker-compose); the CSMS's CA for station certificates is security/ca.py.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_TYPES = ("ecdsa", "rsa")


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def selfsigned_write(
    *, cert_file: Path, key_file: Path, hosts: list[str], key_type: str = "ecdsa", days: int = 825
) -> None:
    """Write a self-signed server certificate and its key (PEM; the key readable by its owner only).

    ``ecdsa`` (P-256) serves the specification's ECDHE-ECDSA cipher suites, ``rsa`` (2048) the RSA ones; one
    endpoint of daphne serves one certificate (nginx can serve both, deploy/nginx.conf)."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type must be one of {KEY_TYPES}")
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if key_type == "ecdsa" else rsa.generate_private_key(65537, 2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_file.touch(mode=0o600, exist_ok=True)
    key_file.chmod(0o600)
    key_file.write_bytes(key_pem)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def daphne_endpoint(*, port: int, interface: str, cert_file: str, key_file: str) -> str:
    """The Twisted endpoint description for daphne's ``-e`` (``:`` and ``\\`` escaped in paths)."""

    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:")

    return f"ssl:{port}:interface={esc(interface)}:privateKey={esc(key_file)}:certKey={esc(cert_file)}"
