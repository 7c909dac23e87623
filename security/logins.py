"""Failed logins (dashboard and API token endpoint) limited per username and per address.

The same rules as the station handshake limiter (``security/limiter.py``), with their own counts: an address with
``CSMS_LOGIN_MAX_FAILURES`` failures within ``CSMS_LOGIN_FAILURE_WINDOW_S`` is refused before the password is
checked; a username under attack is refused only to the addresses that failed for it, so the user, from anywhere
else, still logs in with the right password whatever an attacker does. Per process, in memory (as the handshake
limiter): with W web processes an attacker gets at most W x N guesses per window.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.http import HttpRequest

from .limiter import FailureLimiter

logger = logging.getLogger(__name__)

_limiter: FailureLimiter | None = None
_lock = threading.Lock()


def login_limiter() -> FailureLimiter:
    global _limiter
    if _limiter is None:
        with _lock:
            if _limiter is None:
                _limiter = FailureLimiter(
                    max_failures=settings.CSMS_LOGIN_MAX_FAILURES, window_s=settings.CSMS_LOGIN_FAILURE_WINDOW_S
                )
    return _limiter


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR: the peer, or the forwarded client address where a trusted proxy set it.
    return str(request.META.get("REMOTE_ADDR") or "?")


def login_refused(*, address: str, username: str) -> bool:
    """Whether this attempt is refused without checking the password (too many failures)."""
    rule = login_limiter().refuse_unchecked(identity=username.lower(), address=address)
    if rule:
        logger.warning("login for %r from %s refused: too many failures (%s rule)", username, address, rule)
    return bool(rule)


def login_failed(*, address: str, username: str) -> None:
    logger.info("failed login for %r from %s", username, address)
    login_limiter().record_failure(identity=username.lower(), address=address)


def login_succeeded(*, address: str, username: str) -> None:
    login_limiter().record_success(identity=username.lower(), address=address)


REFUSED_MESSAGE = "Too many failed logins. Try again later."
