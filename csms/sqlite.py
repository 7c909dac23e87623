"""The embedded default's SQLite: the pragmas every new connection runs (Django's ``init_command``), tuned for the
station write pattern (many short write transactions, one writer at a time, readers beside it).

What each one trades is in the README ("The embedded default's SQLite"). ``CSMS_SQLITE_SYNCHRONOUS`` chooses the
durability; ``CSMS_SQLITE_PRAGMAS`` (``name=value;name=value``) overrides or adds pragmas for measurements.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

SYNCHRONOUS = ("normal", "full")
BUSY_TIMEOUT_S = 20

# Order matters: journal_mode first (it is the file's, the others are the connection's).
DEFAULT_PRAGMAS: dict[str, str] = {
    # Readers (dashboard, API) never wait for the writer, and a commit appends to the WAL instead of rewriting pages.
    "journal_mode": "WAL",
    "synchronous": "NORMAL",  # CSMS_SQLITE_SYNCHRONOUS
    # A writer waits this long (ms) for another's lock before "database is locked"; the same as Django's timeout.
    "busy_timeout": str(BUSY_TIMEOUT_S * 1000),
    # 32 MiB of page cache per connection (negative: KiB) instead of 2 MiB: the hot indexes stay in memory.
    "cache_size": "-32768",
    # Reads through a 256 MiB memory map: no read() copies; pages are the OS page cache's, shared by connections.
    "mmap_size": str(256 * 1024 * 1024),
    # Sorts and temporary indexes in memory, not in temp files.
    "temp_store": "MEMORY",
    # Checkpoint (copy the WAL back into the database, the one fsync of NORMAL) every 4,000 pages (16 MiB) instead
    # of 1,000: a quarter of the checkpoints; the WAL file grows to ~16 MiB between them.
    "wal_autocheckpoint": "4000",
    # After a checkpoint the WAL file is truncated back to at most 64 MiB (it does not keep its peak size).
    "journal_size_limit": str(64 * 1024 * 1024),
}


def pragmas(environ: Mapping[str, str]) -> dict[str, str]:
    """The pragmas of a new connection, from the environment (``CSMS_SQLITE_SYNCHRONOUS``, ``CSMS_SQLITE_PRAGMAS``)."""
    out = dict(DEFAULT_PRAGMAS)
    synchronous = environ.get("CSMS_SQLITE_SYNCHRONOUS", "normal").strip().lower()
    if synchronous not in SYNCHRONOUS:
        raise ImproperlyConfigured(f"CSMS_SQLITE_SYNCHRONOUS={synchronous!r}: expected one of {list(SYNCHRONOUS)}")
    out["synchronous"] = synchronous.upper()
    for item in environ.get("CSMS_SQLITE_PRAGMAS", "").split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name.replace("_", "").isalnum() or not value.replace("-", "").isalnum():
            raise ImproperlyConfigured(f"CSMS_SQLITE_PRAGMAS: {item!r} is not name=value")
        out[name] = value
    return out


def init_command(values: Mapping[str, str]) -> str:
    """Django's sqlite3 ``init_command``: statements separated by ``;``, run on every new connection."""
    return "".join(f"PRAGMA {name}={value};" for name, value in values.items())
