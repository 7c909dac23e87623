"""The daphne process's garbage-collector settings (csms/gctune.py), as ``csms.asgi`` applies them at start."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = "import gc, csms.asgi; print(gc.get_freeze_count(), gc.get_threshold()[0])"


def _asgi_gc(**env: str) -> tuple[int, int]:
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"} | env
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    frozen, threshold0 = done.stdout.split()[-2:]
    return int(frozen), int(threshold0)


def test_what_the_application_loaded_is_frozen_out_of_the_collectors_walks_by_default():
    frozen, threshold0 = _asgi_gc()
    # Django, the schemas, the consumers: well over 50,000 objects no full collection walks again.
    assert frozen > 50_000
    assert threshold0 == 50_000  # CPython's 700 ran full collections of 2 s at 10,000 stations


def test_freezing_can_be_turned_off_and_the_threshold_set():
    assert _asgi_gc(CSMS_GC_FREEZE="0", CSMS_GC_THRESHOLD0="5000") == (0, 5000)
