"""csms.fastorm: statements compiled once give the same rows as the ORM."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from csms import fastorm
from stations.services import station_register
from transactions.models import ChargingTransaction, MeterSample

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db

BY_IDS = fastorm.CompiledGet(
    lambda station_id, transaction_id: ChargingTransaction.objects.filter(
        station_id=station_id, transaction_id=transaction_id
    ),
    sentinels=(-1, "\x00sentinel"),
)


def test_compiled_get_returns_the_orm_instance_with_converted_values():
    station, _ = station_register(identity="FAST-1")
    orm = ChargingTransaction.objects.create(
        station=station, transaction_id="T-1", started_at=T0, energy_wh=Decimal("12.5"), seq_no_gaps=[3, 4],
        metering_state={"k": ["a"]},
    )  # fmt: skip
    got = BY_IDS.get(station.pk, "T-1")
    assert isinstance(got, ChargingTransaction) and got.pk == orm.pk
    assert (got.started_at, got.energy_wh, got.seq_no_gaps, got.metering_state) == (T0, Decimal("12.5"), [3, 4],
                                                                                    {"k": ["a"]})  # fmt: skip
    assert got._state.adding is False
    assert BY_IDS.get(station.pk, "T-2") is None


def test_compiled_get_needs_every_sentinel_in_the_parameters():
    broken = fastorm.CompiledGet(lambda a, b: ChargingTransaction.objects.filter(pk=a), sentinels=(-1, -2))
    with pytest.raises(ValueError, match="exactly once"):
        broken.get(1, 2)


def test_update_writes_every_field_and_auto_now():
    station, _ = station_register(identity="FAST-2")
    txn = ChargingTransaction.objects.create(station=station, transaction_id="T-1", started_at=T0)
    before = txn.updated_at
    txn.energy_wh, txn.seq_no_gaps, txn.is_active = Decimal("7.25"), [1], False
    fastorm.update(txn)
    fresh = ChargingTransaction.objects.get(pk=txn.pk)
    assert (fresh.energy_wh, fresh.seq_no_gaps, fresh.is_active) == (Decimal("7.25"), [1], False)
    assert fresh.updated_at > before


def test_insert_ignores_conflicts_only_when_asked():
    station, _ = station_register(identity="FAST-3")

    def sample(value: str) -> MeterSample:
        return MeterSample(station=station, evse_id=1, timestamp=T0, measurand="Energy.Active.Import.Register",
                           value=Decimal(value), unit="Wh")  # fmt: skip

    fastorm.insert([sample("1"), sample("1")], ignore_conflicts=True)  # the second is the same reading
    assert list(MeterSample.objects.values_list("value", flat=True)) == [Decimal(1)]
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        fastorm.insert([sample("2")])


def test_insert_returning_pk_sets_the_key_like_save():
    from stations.models import Connection

    station, _ = station_register(identity="FAST-4")
    connection = Connection(station=station, identity="FAST-4", outcome="accepted", remote_addr="127.0.0.1:1")
    pk = fastorm.insert_returning_pk(connection)
    assert connection.pk == pk and connection._state.adding is False
    stored = Connection.objects.get(pk=pk)
    assert (stored.station_id, stored.remote_addr, stored.connected_at is not None) == (station.pk, "127.0.0.1:1", True)


def test_update_of_named_fields_leaves_the_others_alone():
    station, _ = station_register(identity="FAST-5")
    stale = type(station).objects.get(pk=station.pk)
    station.description = "changed elsewhere"
    station.save()
    stale.is_online, stale.channel_name = True, "chan-1"
    fastorm.update(stale, ["is_online", "channel_name"])
    fresh = type(station).objects.get(pk=station.pk)
    assert (fresh.is_online, fresh.channel_name, fresh.description) == (True, "chan-1", "changed elsewhere")
    with pytest.raises(ValueError, match="unknown"):
        fastorm.update(stale, ["no_such_field"])
