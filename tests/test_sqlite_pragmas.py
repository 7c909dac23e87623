"""The embedded default's SQLite tuning (csms/sqlite.py): every new connection gets the pragmas, read back from
SQLite itself in a process on the real settings without DATABASE_URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from csms import sqlite as csms_sqlite
from tests.conftest import ROOT

READ_BACK = """
import json, django
django.setup()
from django.db import connection
names = ["journal_mode", "synchronous", "busy_timeout", "cache_size", "mmap_size", "temp_store",
         "wal_autocheckpoint", "journal_size_limit"]
with connection.cursor() as cursor:
    values = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in names}
print(json.dumps({"vendor": connection.vendor, "pragmas": values, "max_age": connection.settings_dict["CONN_MAX_AGE"]}))
"""


def read_back(tmp_path: Path, **extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CSMS_TEST_DB_NAME"}}
    env |= {"DJANGO_SETTINGS_MODULE": "csms.settings", "CSMS_VAR_DIR": str(tmp_path)} | extra
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["vendor"] == "sqlite"
    return out["pragmas"] | {"CONN_MAX_AGE": out["max_age"]}


def test_a_new_embedded_connection_gets_the_tuned_pragmas(tmp_path: Path) -> None:
    assert read_back(tmp_path) == {
        "journal_mode": "wal",
        "synchronous": 1,  # NORMAL
        "busy_timeout": 20000,
        "cache_size": -32768,
        "mmap_size": 268435456,
        "temp_store": 2,  # MEMORY
        "wal_autocheckpoint": 4000,
        "journal_size_limit": 67108864,
        "CONN_MAX_AGE": None,  # kept open: a new connection re-reads the schema
    }


def test_synchronous_full_and_pragma_overrides_come_from_the_environment(tmp_path: Path) -> None:
    pragmas = read_back(
        tmp_path,
        CSMS_SQLITE_SYNCHRONOUS="full",
        CSMS_SQLITE_PRAGMAS="cache_size=-2000; wal_autocheckpoint=1000",
        CSMS_DB_CONN_MAX_AGE="0",
    )
    assert (pragmas["synchronous"], pragmas["cache_size"], pragmas["wal_autocheckpoint"]) == (2, -2000, 1000)
    assert pragmas["CONN_MAX_AGE"] == 0
    assert pragmas["mmap_size"] == 268435456  # the defaults not overridden stay


@pytest.mark.parametrize(
    "environ",
    [
        {"CSMS_SQLITE_SYNCHRONOUS": "off"},  # would lose answered events in an OS crash even without power loss
        {"CSMS_SQLITE_PRAGMAS": "cache_size"},
        {"CSMS_SQLITE_PRAGMAS": "cache_size=1; DROP TABLE x"},
    ],
)
def test_bad_sqlite_settings_are_refused_at_start(environ: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfigured):
        csms_sqlite.pragmas(environ)


def test_init_command_lists_journal_mode_first() -> None:
    command = csms_sqlite.init_command(csms_sqlite.pragmas({}))
    assert command.startswith("PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;")
