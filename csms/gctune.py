"""Garbage-collector tuning of a daphne process (``CSMS_GC_FREEZE``, ``CSMS_GC_THRESHOLD0``).

CPython's cyclic collector stops the whole process while it runs, and a full (oldest-generation) collection walks
every tracked object: with Django, the OCPP schemas and a station path loaded that is some 260,000 objects before a
single station connects, and each collection of them stopped the event loop for about 100 ms (measured:
``bench``'s open loop, 400 stations), a pause every connected station sees as latency.

- ``freeze``: once the application is loaded, what exists then (modules, settings, compiled schemas and
  statements: alive for the life of the process anyway) moves to the permanent generation, which no collection
  walks again. What a station connection allocates later is collected as before.
- ``threshold0``: allocations between two youngest-generation collections (CPython's default 700). The older
  generations are collected after so many younger ones, so this sets how often the full collection comes too: at
  10,000 stations (1.8 million tracked objects) CPython's 700 ran 32 full collections in five minutes of connecting
  and traffic, 32 s in all and up to 2.2 s each, every one a pause of the whole process; 50,000 ran 3, 0.18 s
  (realistic traffic p50 1.5 s -> 0.16 s, p99 4.1 s -> 1.8 s; ``bench/results/2026-12-03-gc-threshold.txt``). The
  price: garbage in reference cycles waits for up to 50,000 allocations instead of 700 (kilobytes).
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
