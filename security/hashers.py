"""The hasher of station passwords (HTTP Basic, security profiles 1 and 2).

Station passwords are long random machine secrets (OCPP's BasicAuthPassword: 16 to 40 characters), not words people
choose and reuse: guessing one is infeasible however fast the hash, so a slow KDF (PBKDF2, ~0.5 s of CPU per check)
buys no safety and hands anyone who floods the handshake a lever on the CSMS's CPU. This is one salted
HMAC-SHA256 (microseconds); a stolen hash table of 16+ random characters stays uncrackable. Users' passwords keep
Django's PBKDF2. Existing PBKDF2 station hashes still verify and are re-hashed with this one on the next successful
handshake (``stations.models.ChargingStation.check_password``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.utils.translation import gettext_noop as _

ALGORITHM = "station_sha256"


class StationPasswordHasher(BasePasswordHasher):
    algorithm = ALGORITHM

    def encode(self, password: str, salt: str) -> str:
        if password is None:  # what Django's hashers check (their helper for it is private)
            raise TypeError("password must be provided")
        if not salt or "$" in salt:
            raise ValueError("salt must be provided and cannot contain $")
        digest = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()
        return f"{self.algorithm}${salt}${digest}"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, salt, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": salt}

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        return hmac.compare_digest(encoded.encode(), self.encode(password, decoded["salt"]).encode())

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        decoded = self.decode(encoded)
        return {
            _("algorithm"): decoded["algorithm"],
            _("salt"): mask_hash(decoded["salt"], show=2),
            _("hash"): mask_hash(decoded["hash"]),
        }

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass


def is_fast(encoded: str) -> bool:
    """True when ``encoded`` is checked in microseconds (this hasher), False for a legacy slow hash."""
    return encoded.startswith(ALGORITHM + "$")


def password_policy_check(raw_password: str) -> None:
    """Raise ValueError for a new station password shorter than ``CSMS_STATION_PASSWORD_MIN_LENGTH``."""
    from django.conf import settings

    minimum = settings.CSMS_STATION_PASSWORD_MIN_LENGTH
    if len(raw_password) < minimum:
        raise ValueError(
            f"station passwords must be at least {minimum} characters (a long random secret, e.g. "
            "`openssl rand -base64 24`)"
        )
