"""Handshake failure limiter and the counter of refused handshakes, both per daphne process (in memory).

Rules (``CSMS_AUTH_MAX_FAILURES`` = N failures within ``CSMS_AUTH_FAILURE_WINDOW_S``):

1. An address with N failures (any identity) is refused before any database work or hashing.
2. An identity with N failures is "under attack": an address that already failed for it in the window is refused
   before hashing; any other address still gets its password checked, so the station itself, on its own address,
   connects whatever an attacker elsewhere does. The one case a correct password is refused: it comes from the very
   address the failures come from (the limiter cannot tell them apart; lower nothing, wait out the window).
3. A correct password clears its (identity, address) pair.

What gets written stays bounded whatever the flood (addresses may be spoofed with X-Forwarded-For where daphne
trusts proxy headers): a refused handshake is logged in the connection log only while its identity is under the
limit; beyond, refusals are only counted (RefusalCounter) per window, under the identity with the address ``*`` once
the identity is over its limit, and under the address with the identity ``*`` when the address is refused before
its identity was looked up (unless the limiter already knows that identity from its failures).

In memory, not Redis: the check runs on every handshake and a daphne process sees its own attempts (with W web
processes an attacker gets at most W x N checks per window); the embedded default has no Redis.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings


class FailureLimiter:
    PRUNE_EVERY = 1000  # failures recorded between two sweeps of expired keys (memory stays bounded)

    def __init__(self, *, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._by_address: dict[str, deque[float]] = {}
        self._by_identity: dict[str, deque[float]] = {}
        self._pairs: dict[tuple[str, str], float] = {}  # (identity, address) -> its latest failure
        self._recorded = 0

    def _full(self, times: deque[float] | None, now: float) -> bool:
        # The deque holds the latest N failures: N of them within the window means the limit is reached.
        return times is not None and len(times) >= self.max_failures and now - times[0] < self.window_s

    def address_blocked(self, address: str) -> bool:
        """Rule 1: refuse before looking the station up."""
        if self.max_failures <= 0:
            return False
        with self._lock:
            return self._full(self._by_address.get(address), self._clock())

    def refuse_unchecked(self, *, identity: str, address: str) -> str:
        """Rules 1 and 2: refuse without checking the password: ``"address"`` or ``"identity"`` (the rule), or ""."""
        if self.max_failures <= 0:
            return ""
        now = self._clock()
        with self._lock:
            if self._full(self._by_address.get(address), now):
                return "address"
            if self._full(self._by_identity.get(identity), now):
                last = self._pairs.get((identity, address))
                if last is not None and now - last < self.window_s:
                    return "identity"
        return ""

    def identity_over_limit(self, identity: str) -> bool:
        if self.max_failures <= 0:
            return False
        with self._lock:
            return self._full(self._by_identity.get(identity), self._clock())

    def knows_identity(self, identity: str) -> bool:
        """It has failures on record (failures are only recorded for registered stations)."""
        with self._lock:
            return identity in self._by_identity

    def record_failure(self, *, identity: str, address: str) -> None:
        if self.max_failures <= 0:
            return
        now = self._clock()
        with self._lock:
            for table, key in ((self._by_address, address), (self._by_identity, identity)):
                times = table.get(key)
                if times is None:
                    times = table[key] = deque(maxlen=self.max_failures)
                times.append(now)
            self._pairs[(identity, address)] = now
            self._recorded += 1
            if self._recorded % self.PRUNE_EVERY == 0:
                self._prune(now)

    def record_success(self, *, identity: str, address: str) -> None:
        with self._lock:
            self._pairs.pop((identity, address), None)

    def _prune(self, now: float) -> None:
        for table in (self._by_address, self._by_identity):
            for key in [k for k, times in table.items() if now - times[-1] >= self.window_s]:
                del table[key]
        for pair in [p for p, last in self._pairs.items() if now - last >= self.window_s]:
            del self._pairs[pair]


ANY = "*"  # the identity or address column of an aggregated row that counts many

_limiter: FailureLimiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> FailureLimiter:
    """The process's limiter, from the settings."""
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                _limiter = FailureLimiter(
                    max_failures=settings.CSMS_AUTH_MAX_FAILURES, window_s=settings.CSMS_AUTH_FAILURE_WINDOW_S
                )
    return _limiter


# --- Refused handshakes, counted --------------------------------------------------------------------------------


@dataclass(slots=True)
class RefusalCount:
    identity: str
    address: str
    type: str
    window_start: datetime
    station_id: int | None
    count: int
    last_at: datetime
    reason: str


class RefusalCounter:
    """Refused handshakes added up per (identity, address, type, window) in memory, taken by the flusher
    (security.services.handshake_refusals_record): a flood writes a few rows, never one per attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str, datetime], RefusalCount] = {}

    def add(self, *, identity: str, address: str, type: str, station_id: int | None, reason: str, at: datetime) -> None:
        window = max(settings.CSMS_AUTH_FAILURE_WINDOW_S, 1)
        start = datetime.fromtimestamp(at.timestamp() // window * window, tz=at.tzinfo)
        key = (identity[:48], address[:64], type, start)
        with self._lock:
            found = self._pending.get(key)
            if found is None:
                self._pending[key] = RefusalCount(identity[:48], address[:64], type, start, station_id, 1, at, reason)
            else:
                found.count += 1
                found.last_at = max(found.last_at, at)
                found.station_id = found.station_id or station_id

    def take(self) -> list[RefusalCount]:
        with self._lock:
            taken, self._pending = list(self._pending.values()), {}
        return taken

    def put_back(self, counts: list[RefusalCount]) -> None:
        """A flush the database refused: count them again next time."""
        for c in counts:
            with self._lock:
                key = (c.identity, c.address, c.type, c.window_start)
                found = self._pending.get(key)
                if found is None:
                    self._pending[key] = c
                else:
                    found.count += c.count

    def __bool__(self) -> bool:
        return bool(self._pending)


refusals = RefusalCounter()
