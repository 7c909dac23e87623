"""Process tuning applied when the ASGI application loads (daphne): the interpreter's thread switch interval.

The database work of the stations' messages runs in a thread pool while the event loop thread parses and answers
frames. Every statement releases the GIL for its network round trip and must take it back; with the default 5 ms
switch interval a returning thread can wait that long behind the busy event loop, several times per message
(the "convoy effect", seen in py-spy samples of the bench: pool threads stalled in psycopg send/wait).
"""

from __future__ import annotations

import sys

from django.conf import settings


def apply() -> None:
    sys.setswitchinterval(settings.CSMS_GIL_SWITCH_INTERVAL_MS / 1000)
