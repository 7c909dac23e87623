"""The test process's hasher for users' passwords: Django's PBKDF2 with few iterations.

The suite makes a few hundred users (a full PBKDF2 hash is ~0.5 s of CPU each, minutes in all). The algorithm
name stays ``pbkdf2_sha256`` and the iterations are in each hash, so the live servers (production settings, full
iterations) verify these hashes as they are and re-hash them at a login, as they would any older hash.
"""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1000
