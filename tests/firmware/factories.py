"""Firmware images signed as OCPP's signed firmware (a key, its certificate, a signature over the SHA-256)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

from firmware.images import firmware_image_upload
from firmware.models import FirmwareImage

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def signing_key(kind: str = "ec") -> PrivateKey:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )


def certificate_pem(key: PrivateKey, cn: str = "Firmware Signer") -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(key: PrivateKey, data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(digest, padding.PKCS1v15(), prehashed)
    else:
        signature = key.sign(digest, ec.ECDSA(prehashed))
    return base64.b64encode(signature).decode()


def signed_image(version: str = "2.0.0", data: bytes = b"firmware-bytes " * 100) -> FirmwareImage:
    key = signing_key()
    return firmware_image_upload(
        file=io.BytesIO(data),
        name=f"fw-{version}.bin",
        version=version,
        signing_certificate=certificate_pem(key),
        signature=sign(key, data),
    )
