"""Station password hashing (fast salted hash, legacy PBKDF2 upgraded, minimum length) and the failure limiter's
rules, in process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command

from security.hashers import ALGORITHM
from security.limiter import FailureLimiter, RefusalCounter
from security.models import SecurityEvent, SecurityEventSource
from security.services import handshake_refusals_record
from stations.connections import PasswordCheck, password_verify, station_connect
from stations.models import ChargingStation, Connection
from stations.services import station_register
from tests.api.helpers import call

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "Zq4-w9Lr2Hc8Tn6Vb1Xe"  # 20 random characters, as station passwords should be


def test_new_passwords_get_the_fast_station_hash():
    station, _ = station_register(identity="CS-H", password=SECRET)
    assert station.password_hash.startswith(f"{ALGORITHM}$") and SECRET not in station.password_hash
    assert station.check_password(SECRET)
    assert not station.check_password(SECRET + "x")
    assert not station.check_password("")
    other, _ = station_register(identity="CS-H2", password=SECRET)
    assert other.password_hash != station.password_hash  # salted


def test_legacy_pbkdf2_hash_verifies_and_is_upgraded_on_success():
    station, _ = station_register(identity="CS-L")
    legacy = make_password(SECRET, hasher="pbkdf2_sha256")
    ChargingStation.objects.filter(pk=station.pk).update(password_hash=legacy, security_profile=1)
    station.refresh_from_db()
    assert not station.check_password("wrong-password-123")
    assert ChargingStation.objects.get(pk=station.pk).password_hash == legacy  # a failure changes nothing
    assert station.check_password(SECRET)
    upgraded = ChargingStation.objects.get(pk=station.pk).password_hash
    assert upgraded.startswith(f"{ALGORITHM}$")
    assert ChargingStation.objects.get(pk=station.pk).check_password(SECRET)


def test_handshake_with_legacy_hash_is_checked_apart_and_upgraded():
    station, _ = station_register(identity="CS-L2")
    legacy = make_password(SECRET, hasher="pbkdf2_sha256")
    ChargingStation.objects.filter(pk=station.pk).update(password_hash=legacy, security_profile=1)
    import base64

    auth = "Basic " + base64.b64encode(f"CS-L2:{SECRET}".encode()).decode()
    result = station_connect(
        identity="CS-L2", authorization=auth, remote_addr="10.1.1.1:5000", subprotocol="ocpp2.0.1", channel_name="c"
    )
    # The database thread does not hash: it hands the check over (to csms.dbpool.auth in the consumer).
    assert result.opened is None and isinstance(result.check, PasswordCheck)
    verdict = password_verify(check=result.check)
    assert verdict.ok and verdict.upgraded_hash.startswith(f"{ALGORITHM}$")


def test_minimum_password_length_for_new_passwords(settings, tokens):
    settings.CSMS_STATION_PASSWORD_MIN_LENGTH = 16
    with pytest.raises(CommandError, match="at least 16 characters"):
        call_command("addstation", "CS-S", "--password", "short-pw")
    call_command("addstation", "CS-S", "--password", SECRET)
    code, body = call(tokens["admin"], "POST", "/api/v1/stations/", {"identity": "CS-T", "password": "tooshort"})
    assert code == 400 and "at least 16 characters" in body["password"][0]
    code, body = call(tokens["admin"], "PATCH", "/api/v1/stations/CS-S/", {"password": "tooshort"})
    assert code == 400 and "password" in body
    assert call(tokens["admin"], "PATCH", "/api/v1/stations/CS-S/", {"password": SECRET + "!"})[0] == 200
    # Existing (shorter) passwords keep working: the minimum applies when a password is set.
    settings.CSMS_STATION_PASSWORD_MIN_LENGTH = 64
    assert ChargingStation.objects.get(identity="CS-S").check_password(SECRET + "!")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_address_rule():
    clock = Clock()
    lim = FailureLimiter(max_failures=3, window_s=60, clock=clock)
    for i in range(3):
        assert not lim.address_blocked("10.0.0.9")
        lim.record_failure(identity=f"CS-{i}", address="10.0.0.9")  # any identities
    assert lim.address_blocked("10.0.0.9")
    assert lim.refuse_unchecked(identity="CS-other", address="10.0.0.9") == "address"
    assert not lim.address_blocked("10.0.0.10")
    clock.now += 61  # the window slides: failures older than it no longer count
    assert not lim.address_blocked("10.0.0.9")


def test_limiter_identity_rule_never_locks_out_other_addresses():
    clock = Clock()
    lim = FailureLimiter(max_failures=3, window_s=60, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        lim.record_failure(identity="CS-X", address=address)
    # The identity is over its limit: addresses that failed for it are refused unchecked ...
    assert lim.refuse_unchecked(identity="CS-X", address="10.0.0.1") == "identity"
    assert lim.identity_over_limit("CS-X") and lim.knows_identity("CS-X") and not lim.knows_identity("CS-Y")
    # ... any other address (the station's own) is still checked, and other identities are not concerned.
    assert not lim.refuse_unchecked(identity="CS-X", address="192.0.2.7")
    assert not lim.refuse_unchecked(identity="CS-Y", address="10.0.0.1")
    lim.record_success(identity="CS-X", address="10.0.0.1")  # it proved it knows the password
    assert not lim.refuse_unchecked(identity="CS-X", address="10.0.0.1")


def test_limiter_off_and_memory_bounded():
    lim = FailureLimiter(max_failures=0, window_s=60)
    lim.record_failure(identity="CS-X", address="a")
    assert not lim.refuse_unchecked(identity="CS-X", address="a") and not lim.address_blocked("a")
    clock = Clock()
    lim = FailureLimiter(max_failures=2, window_s=10, clock=clock)
    for i in range(FailureLimiter.PRUNE_EVERY - 1):
        lim.record_failure(identity=f"CS-{i}", address=f"10.0.{i // 256}.{i % 256}")
    clock.now += 11
    lim.record_failure(identity="CS-last", address="10.9.9.9")  # triggers the sweep of expired keys
    assert len(lim._by_identity) == 1 and len(lim._by_address) == 1 and len(lim._pairs) == 1


def test_wrong_password_refusals_are_limited_and_aggregated(settings):
    settings.CSMS_AUTH_MAX_FAILURES = 3
    import base64

    from security import limiter as limiter_module

    limiter_module._limiter = None  # the process's limiter, rebuilt from the settings above
    station_register(identity="CS-A", password=SECRET)
    auth = "Basic " + base64.b64encode(b"CS-A:wrong-password-0000").decode()
    for _ in range(5):
        result = station_connect(
            identity="CS-A", authorization=auth, remote_addr="10.2.2.2:4000", subprotocol="ocpp2.0.1", channel_name=""
        )
        assert result.opened is None and result.auth_refused
    # Two checked and logged; the third (checked) takes the identity over its limit: counted only, under the
    # address "*"; then refused unchecked (the address is over its limit too) and counted under the address.
    assert Connection.objects.filter(identity="CS-A", outcome="refused").count() == 2
    handshake_refusals_record(counts=limiter_module.refusals.take())
    rows = {
        (e.type, e.remote_addr): e
        for e in SecurityEvent.objects.filter(identity="CS-A", source=SecurityEventSource.CSMS)
    }
    assert {key: e.count for key, e in rows.items()} == {
        ("CsmsRefusedHandshake", "10.2.2.2"): 2,
        ("CsmsRefusedHandshake", "*"): 1,
        ("CsmsThrottledHandshake", "10.2.2.2"): 2,
    }
    assert all(e.station is not None and e.station.identity == "CS-A" for e in rows.values())
    # The correct password from the station's own address still connects.
    good = "Basic " + base64.b64encode(f"CS-A:{SECRET}".encode()).decode()
    result = station_connect(
        identity="CS-A", authorization=good, remote_addr="10.3.3.3:4000", subprotocol="ocpp2.0.1", channel_name="x"
    )
    assert result.opened is not None
    limiter_module._limiter = None


def test_refusal_counts_add_up_in_one_row_per_window():
    counter = RefusalCounter()
    at = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    for _ in range(4):
        counter.add(
            identity="CS-Z", address="10.0.0.5", type="CsmsRefusedHandshake", station_id=None, reason="r", at=at
        )
    handshake_refusals_record(counts=counter.take())
    counter.add(identity="CS-Z", address="10.0.0.5", type="CsmsRefusedHandshake", station_id=None, reason="r", at=at)
    handshake_refusals_record(counts=counter.take())
    row = SecurityEvent.objects.get(identity="CS-Z")
    assert row.count == 5 and row.station is None and row.timestamp == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert not counter.take()


def test_a_flood_from_ever_new_addresses_writes_a_bounded_number_of_rows(settings):
    """Addresses can be spoofed where daphne trusts X-Forwarded-For: past the identity's limit nothing is written
    per attempt, and the counts go to one row for the identity."""
    settings.CSMS_AUTH_MAX_FAILURES = 3
    import base64

    from security import limiter as limiter_module

    limiter_module._limiter = None
    station_register(identity="CS-B", password=SECRET)
    auth = "Basic " + base64.b64encode(b"CS-B:wrong-password-0000").decode()
    for i in range(50):
        result = station_connect(
            identity="CS-B",
            authorization=auth,
            remote_addr=f"10.7.{i}.1:4000",
            subprotocol="ocpp2.0.1",
            channel_name="",
        )
        assert result.opened is None
    assert Connection.objects.filter(identity="CS-B").count() == 2
    handshake_refusals_record(counts=limiter_module.refusals.take())
    rows = SecurityEvent.objects.filter(identity="CS-B")
    assert rows.count() <= 4 and sum(r.count for r in rows) == 50
    assert rows.get(remote_addr="*").count >= 47
    limiter_module._limiter = None
