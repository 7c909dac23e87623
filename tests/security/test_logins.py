"""Failed logins are limited per username and address, on the dashboard and the API token endpoint; the right
password from another address is never locked out by an attacker's failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from security import logins

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"


@pytest.fixture(autouse=True)
def fresh_limiter(settings: Any) -> Iterator[None]:
    settings.CSMS_LOGIN_MAX_FAILURES = 3
    settings.CSMS_LOGIN_FAILURE_WINDOW_S = 900
    logins._limiter = None
    yield
    logins._limiter = None


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="right-horse-battery")


def login(address: str, username: str, password: str) -> tuple[int, str]:
    response = Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )
    return response.status_code, response.content.decode()


def token(address: str, username: str, password: str) -> tuple[int, dict]:
    response = Client().post("/api/v1/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return response.status_code, response.json()


def test_dashboard_login_refuses_the_failing_address_but_not_the_owner(alice):
    for _ in range(3):
        code, page = login(ATTACKER, "alice", "guess")
        assert code == 200 and "Wrong username or password." in page
    # Even the right password is refused from the address that failed: the limiter cannot tell them apart.
    code, page = login(ATTACKER, "alice", "right-horse-battery")
    assert code == 429 and "Too many failed logins" in page
    # Any username from that address is refused (the address rule), before its password is checked.
    assert login(ATTACKER, "bob", "whatever")[0] == 429
    # The owner, from elsewhere, logs in: an attacker's failures never lock out the right password.
    assert login(OWNER, "alice", "right-horse-battery")[0] == 302


def test_token_endpoint_limits_failures_the_same_way(alice):
    for _ in range(3):
        code, body = token(ATTACKER, "alice", "guess")
        assert code == 400 and "non_field_errors" in body
    assert token(ATTACKER, "alice", "right-horse-battery") == (
        429,
        {"detail": "Too many failed logins. Try again later."},
    )
    code, body = token(OWNER, "alice", "right-horse-battery")
    assert code == 200 and len(body["token"]) == 40


def test_a_success_clears_the_pair_and_limits_are_off_at_zero(settings, alice):
    for _ in range(2):
        login(OWNER, "alice", "guess")
    assert login(OWNER, "alice", "right-horse-battery")[0] == 302
    settings.CSMS_LOGIN_MAX_FAILURES = 0
    logins._limiter = None
    for _ in range(5):
        assert login(ATTACKER, "alice", "guess")[0] == 200
    assert login(ATTACKER, "alice", "right-horse-battery")[0] == 302
