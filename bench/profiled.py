"""Run daphne under cProfile, every thread included (the ORM work runs in the thread pool), and write the merged
CPU-time statistics to a file when daphne stops (SIGINT).

    python -m bench.profiled OUT.prof -b 127.0.0.1 -p 8000 csms.asgi:application
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from typing import Any

_profilers: list[cProfile.Profile] = []
_lock = threading.Lock()


def _thread_start(*_: Any) -> None:
    # Installed with threading.setprofile: runs once in each new thread, then hands over to a real profiler.
    profiler = cProfile.Profile(time.thread_time)  # CPU of this thread: waits on the DB socket cost nothing
    with _lock:
        _profilers.append(profiler)
    profiler.enable()


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["daphne", *sys.argv[2:]]
    from daphne.cli import CommandLineInterface

    threading.setprofile(_thread_start)
    main_profiler = cProfile.Profile(time.thread_time)
    main_profiler.enable()
    try:
        CommandLineInterface.entrypoint()
    finally:
        main_profiler.disable()
        stats = pstats.Stats(main_profiler)
        with _lock:
            for profiler in _profilers:
                try:
                    stats.add(profiler)
                except Exception:  # a thread's profiler may be mid-update; its sample is not essential
                    pass
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
