from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections


@pytest.fixture(autouse=True)
def close_thread_connections() -> Iterator[None]:
    """Async views run ORM code in pool threads; with CONN_MAX_AGE 0 those connections close after each call
    (as in the live servers), so none is left open when the test database is dropped."""
    db_settings = connections["default"].settings_dict
    before = db_settings["CONN_MAX_AGE"]
    db_settings["CONN_MAX_AGE"] = 0
    yield
    db_settings["CONN_MAX_AGE"] = before
