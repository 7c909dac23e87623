"""Firmware images (block L): upload into Django storage with the checks OCPP's signed firmware needs.

The signature is checked at upload, as a station will: the base64 ``signature`` must verify over the file's
SHA-256 digest with the public key of ``signing_certificate`` (RSA PKCS#1 v1.5 or PSS, or ECDSA). A file signed
with another key, a garbled signature or a certificate that is not PEM is refused with a clear message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import IO, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from django.core.files.base import File
from django.db import transaction

from stations.commands.pipeline import Sender, sender_user

from .models import FirmwareImage

# UpdateFirmware's firmware.signingCertificate / signature limits (FirmwareType).
MAX_CERTIFICATE_CHARS = 5500
MAX_SIGNATURE_CHARS = 800


class FirmwareImageError(ValueError):
    """An upload refused: nothing is stored."""


def file_digests(file: Any) -> tuple[str, bytes, int]:
    """MD5 (hex), SHA-256 (bytes) and size of an open file, read in chunks."""
    md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
    file.seek(0)
    for chunk in iter(lambda: file.read(1 << 16), b""):
        md5.update(chunk)
        sha256.update(chunk)
        size += len(chunk)
    file.seek(0)
    return md5.hexdigest(), sha256.digest(), size


def signature_check(*, certificate_pem: str, signature_b64: str, sha256_digest: bytes) -> None:
    """Raise FirmwareImageError unless the signature verifies over the digest with the certificate's key."""
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError as exc:
        raise FirmwareImageError(f"the signing certificate is not a PEM X.509 certificate: {exc}") from None
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise FirmwareImageError("the signature is not valid base64") from None
    key = certificate.public_key()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, sha256_digest, padding.PKCS1v15(), prehashed)
            except InvalidSignature:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                key.verify(signature, sha256_digest, pss, prehashed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, sha256_digest, ec.ECDSA(prehashed))
        else:
            raise FirmwareImageError(f"unsupported signing key type {type(key).__name__}: RSA or ECDSA expected")
    except InvalidSignature:
        raise FirmwareImageError(
            "the signature does not verify over the file's SHA-256 with the signing certificate's key"
        ) from None


def firmware_image_upload(
    *,
    file: File[bytes] | IO[bytes],
    name: str,
    version: str,
    signing_certificate: str = "",
    signature: str = "",
    user: Sender = None,
) -> FirmwareImage:
    """Store an image with its MD5 (PublishFirmware's checksum) and SHA-256, after checking its signature.

    A signature needs its certificate and the other way round; both are optional together (unsigned firmware).
    Raises FirmwareImageError (nothing stored).
    """
    version = version.strip()
    signing_certificate, signature = signing_certificate.strip(), signature.strip()
    if not version or len(version) > 50:
        raise FirmwareImageError("version is required, at most 50 characters")
    if bool(signing_certificate) != bool(signature):
        raise FirmwareImageError("a signature needs its signing certificate, and a signing certificate a signature")
    if len(signing_certificate) > MAX_CERTIFICATE_CHARS:
        raise FirmwareImageError(f"the signing certificate is longer than OCPP's {MAX_CERTIFICATE_CHARS} characters")
    if len(signature) > MAX_SIGNATURE_CHARS:
        raise FirmwareImageError(f"the signature is longer than OCPP's {MAX_SIGNATURE_CHARS} characters")
    md5_hex, sha256, size = file_digests(file)
    if size == 0:
        raise FirmwareImageError("the firmware file is empty")
    if signature:
        signature_check(certificate_pem=signing_certificate, signature_b64=signature, sha256_digest=sha256)
    with transaction.atomic():
        image = FirmwareImage(
            version=version,
            size_bytes=size,
            md5_hex=md5_hex,
            sha256_hex=sha256.hex(),
            signing_certificate=signing_certificate,
            signature=signature,
            uploaded_by=sender_user(user),
        )
        image.file.save(name.rsplit("/", 1)[-1] or "firmware.bin", file if isinstance(file, File) else File(file))
    return image
