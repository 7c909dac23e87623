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


@pytest.fixture(autouse=True)
def clear_cache() -> Iterator[None]:
    """Throttle counters and the webhook event set live in the (per-process) cache: start every test clean."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tokens(transactional_db: None) -> dict[str, str]:
    """API tokens of one user per role: ``none`` (no permission), ``billing``, ``operator``, ``admin`` (staff)."""
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from csms.roles import roles_ensure

    roles_ensure()
    keys: dict[str, str] = {}
    for role in ("none", "billing", "operator", "admin"):
        user = User.objects.create_user(f"user-{role}", password="pw", is_staff=role == "admin")
        if role in ("billing", "operator"):
            user.groups.add(Group.objects.get(name=role))
        keys[role] = Token.objects.create(user=user).key
    return keys
