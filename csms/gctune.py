"""Garbage-collector tuning of a daphne process (``CSMS_GC_FREEZE``, ``CSMS_GC_THRESHOLD0``).

CPython's cyclic collector stops the whole process while it runs, and a full (oldest-generation) collection walks
every tracked object: with Django, the OCPP schemas and a station path loaded that is some 260,000 objects before a
single station connects, and each collection of them stopped the event loop for about 100 ms (measured:
``bench``'s open loop, 400 stations), a pause every connected station sees as latency.

- ``freeze``: once the application is loaded, what exists then (modules, settings, compiled schemas and
  statements: alive for the life of the process anyway) moves to the permanent generation, which no collection
  walks again. What a station connection allocates later is collected as before.
- ``threshold0``: allocations between two youngest-generation collections (CPython's default 700). A larger value
  runs the collector less often on the per-frame garbage that reference counting frees anyway.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger("csms")


def gc_tune(*, freeze: bool, threshold0: int) -> None:
    if threshold0 > 0:
        _, threshold1, threshold2 = gc.get_threshold()
        gc.set_threshold(threshold0, threshold1, threshold2)
    if freeze:
        gc.collect()  # what is garbage now is not frozen with the rest
        gc.freeze()
    logger.debug("gc: threshold %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
