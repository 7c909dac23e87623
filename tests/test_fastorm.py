"""csms.fastorm: statements compiled once give the same rows as the ORM."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower, Now
from django.db.models.signals import ModelSignal, post_init, post_save, pre_save
from django.test.utils import isolate_apps

from csms import fastorm
from stations.services import station_register
from transactions.models import ChargingTransaction, IdToken, MeterSample

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


def _columns_update_changed_writes(obj: Any) -> list[str]:
    """The columns the one UPDATE of ``fastorm.update_changed(obj)`` assigns, sorted."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        fastorm.update_changed(obj)
    [update] = [q["sql"] for q in queries.captured_queries]
    assigned = update.split(" SET ")[1].split(" WHERE ")[0]
    return sorted(part.split(" = ")[0].strip('"') for part in assigned.split(", "))


def test_insert_returning_pk_ignoring_conflicts_tells_a_new_row_from_an_existing_one():
    station, _ = station_register(identity="FAST-4b")
    first = ChargingTransaction(station=station, transaction_id="T-1", started_at=T0, metering_state={})
    pk = fastorm.insert_returning_pk(first, ignore_conflicts=True)
    assert pk is not None and first.pk == pk and first._state.adding is False
    again = ChargingTransaction(station=station, transaction_id="T-1", started_at=T0, metering_state={})
    assert fastorm.insert_returning_pk(again, ignore_conflicts=True) is None
    assert again._state.adding is True  # not saved: no primary key set either
    assert again.__dict__["id"] is None
    assert ChargingTransaction.objects.filter(station=station).count() == 1
    # The inserted instance is as if loaded: an update afterwards writes only what changed (and JSON, auto_now).
    first.energy_wh = Decimal("3.5")
    assert _columns_update_changed_writes(first) == ["energy_wh", "metering_state", "seq_no_gaps", "updated_at"]
    assert ChargingTransaction.objects.get(pk=pk).energy_wh == Decimal("3.5")


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


# --- The guard: what these helpers would not do as the ORM does is refused when a statement is first built ----------


@pytest.fixture
def fresh() -> Iterator[None]:
    """Compiled statements forgotten before and after: the guard runs at the next first use."""
    fastorm.reset()
    yield
    fastorm.reset()


def _receiver(**kwargs: Any) -> None:
    pass


def _sample(station_id: int) -> MeterSample:
    return MeterSample(station_id=station_id, evse_id=1, timestamp=T0, measurand="Energy.Active.Import.Register",
                       value=Decimal(1), unit="Wh")  # fmt: skip


@pytest.mark.parametrize("signal", [pre_save, post_save], ids=["pre_save", "post_save"])
@pytest.mark.parametrize("sender", [MeterSample, None], ids=["for-the-model", "for-every-model"])
def test_a_save_receiver_on_a_written_model_is_refused_at_first_use(
    fresh: None, signal: ModelSignal, sender: type[models.Model] | None
) -> None:
    station, _ = station_register(identity="FAST-6")
    signal.connect(_receiver, sender=sender, dispatch_uid="test-fastorm-guard")
    try:
        name = "pre_save" if signal is pre_save else "post_save"
        refused = f"fastorm cannot write transactions.MeterSample: it has {name} receivers"
        with pytest.raises(fastorm.Unsupported, match=refused):
            fastorm.insert([_sample(station.pk)])
        with pytest.raises(fastorm.Unsupported, match=refused):
            fastorm.update(_sample(station.pk), ["value"])
        assert MeterSample.objects.count() == 0
    finally:
        assert signal.disconnect(sender=sender, dispatch_uid="test-fastorm-guard")
    fastorm.insert([_sample(station.pk)])  # refused statements were not kept: without the receiver it is built
    assert MeterSample.objects.count() == 1


def test_reads_send_init_signals_as_the_orm_so_init_and_save_receivers_do_not_refuse_them(fresh: None) -> None:
    station, _ = station_register(identity="FAST-7")
    ChargingTransaction.objects.create(station=station, transaction_id="T-1", started_at=T0)
    seen: list[str] = []

    def on_init(sender: type[models.Model], instance: ChargingTransaction, **kwargs: Any) -> None:
        seen.append(instance.transaction_id)

    post_init.connect(on_init, sender=ChargingTransaction, dispatch_uid="test-fastorm-init")
    post_save.connect(_receiver, sender=ChargingTransaction, dispatch_uid="test-fastorm-init")
    try:
        assert BY_IDS.get(station.pk, "T-1").transaction_id == "T-1"
    finally:
        post_init.disconnect(sender=ChargingTransaction, dispatch_uid="test-fastorm-init")
        post_save.disconnect(sender=ChargingTransaction, dispatch_uid="test-fastorm-init")
    assert seen == ["T-1"]


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (lambda: models.GeneratedField(expression=F("a") * 2, output_field=models.IntegerField(), db_persist=True),
         "a GeneratedField"),
        (lambda: models.DateTimeField(db_default=Now()), "it has a db_default"),
    ],
    ids=["generated", "db_default"],
)  # fmt: skip
def test_a_database_computed_column_is_refused_where_it_is_written_or_read(
    fresh: None, column: Callable[[], models.Field[Any, Any]], reason: str
) -> None:
    with isolate_apps("stations"):  # a model of no app registry: no table, no migration

        class Computed(models.Model):  # noqa: DJ008
            a = models.IntegerField()
            b = column()

            class Meta:
                app_label = "stations"
                managed = False

    obj = Computed(pk=1, a=1)
    with pytest.raises(fastorm.Unsupported, match=f"fastorm cannot write stations.Computed.b: {reason}"):
        fastorm.insert([obj])
    with pytest.raises(fastorm.Unsupported, match=f"fastorm cannot write stations.Computed.b: {reason}"):
        fastorm.update(obj, ["b"])
    with pytest.raises(fastorm.Unsupported, match=f"fastorm cannot read stations.Computed.b: {reason}"):
        fastorm.CompiledGet(lambda a: Computed._default_manager.filter(a=a), sentinels=(-1,)).compile()
    # Only the columns a statement touches count: without b it is what the ORM does.
    fastorm.CompiledGet(lambda a: Computed._default_manager.only("a").filter(a=a), sentinels=(-1,)).compile()
    assert fastorm.compiled_models() == {Computed: frozenset({"get"})}


@pytest.mark.parametrize(
    ("build", "sentinel", "refused"),
    [
        (lambda v: ChargingTransaction.objects.filter(transaction_id__iexact=v), "\x00s",
         "transaction_id__iexact is not an exact comparison"),
        (lambda v: ChargingTransaction.objects.filter(transaction_id__contains=v), "\x00s",
         "transaction_id__contains is not an exact comparison"),
        (lambda v: ChargingTransaction.objects.filter(pk__in=[v]), -1, "id__in is not an exact comparison"),
        (lambda v: ChargingTransaction.objects.filter(pk__gt=v), -1, "id__gt is not an exact comparison"),
        (lambda v: ChargingTransaction.objects.filter(pk=v, is_active__isnull=False), -1,
         "is_active__isnull is not an exact comparison"),
        (lambda v: ChargingTransaction.objects.filter(metering_state={"k": v}), "\x00s",
         "metering_state__exact is not an exact comparison"),  # JSONExact wraps its value
        (lambda v: ChargingTransaction.objects.filter(started_at__date=v), date(1900, 1, 1),
         "started_at__date__exact compares a transform"),
        (lambda v: ChargingTransaction.objects.filter(pk=v).extra(where=["1 = 1"]), -1,
         "a condition of type ExtraWhere is not a field lookup"),
    ],
    ids=["iexact", "contains", "in", "gt", "isnull", "json", "transform", "extra"],
)  # fmt: skip
def test_compiled_get_refuses_conditions_other_than_exact_comparisons(
    fresh: None, build: Callable[[Any], Any], sentinel: Any, refused: str
) -> None:
    with pytest.raises(fastorm.Unsupported, match=f"CompiledGet on transactions.ChargingTransaction: {refused}"):
        fastorm.CompiledGet(build, sentinels=(sentinel,)).compile()


def test_compiled_get_takes_exact_comparisons_of_columns_and_of_named_expressions(fresh: None) -> None:
    token = IdToken.objects.create(id_token="AbC%", type="ISO14443")
    IdToken.objects.create(id_token="ABCD", type="ISO14443")
    by_lower = fastorm.CompiledGet(
        lambda t, kind: IdToken.objects.alias(lowered=Lower("id_token")).filter(lowered=t, type=kind),
        sentinels=("\x00t", "\x00kind"),
    )
    assert by_lower.get("abc%", "ISO14443").pk == token.pk  # "%" is no wildcard: the value is compared as is
    assert by_lower.get("abc_", "ISO14443") is None
    either = fastorm.CompiledGet(
        lambda a, b: IdToken.objects.filter(Q(pk=a) | ~Q(id_token=b), type="ISO14443"), sentinels=(-1, "\x00b")
    )
    assert either.get(token.pk, "ABCD").pk == token.pk


def test_the_projects_compiled_statements_pass_the_guard(fresh: None) -> None:
    """Every statement the project compiles, built anew: a receiver or computed column added to one of these
    models fails here (and at the first use in production), not silently."""
    from csms.ocpp.router import CallContext
    from stations import handlers
    from stations.connections import connection_open
    from stations.models import BootRecord, ChargingStation, Connection
    from tests.transactions.factories import meter_value, sampled, tx_event
    from transactions import services as transactions
    from transactions.models import TransactionEventRecord

    project = [c for c in fastorm.CompiledGet.instances if not c.build.__module__.startswith("tests.")]
    for compiled in project:
        compiled.compile()
    station, _ = station_register(identity="FAST-8")
    connection_open(station_id=station.pk, remote_addr="127.0.0.1:1", subprotocol="ocpp2.0.1", channel_name="c1")
    handlers.boot_notification(
        CallContext(station_id=station.pk, identity="FAST-8", unique_id="b1", action="BootNotification"),
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    )
    reading = [meter_value("2026-05-01T12:00:00Z", sampled(100))]
    transactions.transaction_event_apply(station_id=station.pk, event=tx_event(
        "Started", 0, "2026-05-01T12:00:00Z", meter=reading, id_token={"idToken": "T", "type": "ISO14443"}
    ))  # fmt: skip
    transactions.meter_values_record(station_id=station.pk, evse_id=1, meter_values=reading)
    assert fastorm.compiled_models() == {
        ChargingStation: {"get", "update"},
        Connection: {"insert"},
        BootRecord: {"insert"},
        ChargingTransaction: {"get", "insert", "update"},
        TransactionEventRecord: {"insert"},
        MeterSample: {"insert"},
        IdToken: {"get"},  # read only: its post_save receiver (local list sync) runs on the ORM's writes
    }
    assert post_save.has_listeners(IdToken) is True


SAMPLE_COLUMNS = (
    "station_id", "transaction_id", "evse_id", "from_transaction_event", "timestamp", "measurand", "phase",
    "location", "context", "value", "unit", "signed_meter_value",
)  # fmt: skip


def test_insert_tuples_prepares_values_as_get_db_prep_save_does():
    from django.db import connection

    station, _ = station_register(identity="FAST-T1")
    txn = ChargingTransaction.objects.create(station=station, transaction_id="T-1", started_at=T0)
    row = (station.pk, txn.pk, 2, True, T0, "Energy.Active.Import.Register", "L1", "Outlet", "Sample.Periodic",
           Decimal("1234.5"), "Wh", {"signedMeterData": "abc", "signingMethod": "", "encodingMethod": "x"})  # fmt: skip
    fields = [f for f in MeterSample._meta.concrete_fields if not f.primary_key]
    for field, value in zip(fields, row, strict=True):
        prepared = fastorm.preparer(field, connection)(value)
        expected = field.get_db_prep_save(value, connection)
        assert (type(prepared), str(getattr(prepared, "obj", prepared))) == (
            type(expected),
            str(getattr(expected, "obj", expected)),
        ), field.name
    fastorm.insert_tuples(MeterSample, SAMPLE_COLUMNS, [row, (*row[:4], T0.replace(minute=1), *row[5:])])
    stored = list(MeterSample.objects.order_by("timestamp").values_list(*SAMPLE_COLUMNS))
    assert stored == [row, (*row[:4], T0.replace(minute=1), *row[5:])]
    fastorm.insert_tuples(MeterSample, SAMPLE_COLUMNS, [row], ignore_conflicts=True)  # a retried message
    assert MeterSample.objects.count() == 2
    with pytest.raises(ValueError, match="columns must be"):
        fastorm.insert_tuples(MeterSample, SAMPLE_COLUMNS[::-1], [row[::-1]])


def test_update_changed_writes_only_changed_columns_json_and_auto_now():
    station, _ = station_register(identity="FAST-T2")
    ChargingTransaction.objects.create(station=station, transaction_id="T-1", started_at=T0, energy_wh=Decimal(1))
    txn = BY_IDS.get(station.pk, "T-1")
    before = txn.updated_at
    txn.energy_wh = Decimal("7.25")
    assert _columns_update_changed_writes(txn) == ["energy_wh", "metering_state", "seq_no_gaps", "updated_at"]
    # Changed in place (a JSON value equal to its loaded self): written all the same.
    txn.seq_no_gaps.append(9)
    fastorm.update_changed(txn)
    fresh = ChargingTransaction.objects.get(pk=txn.pk)
    assert (fresh.energy_wh, fresh.seq_no_gaps, fresh.started_at) == (Decimal("7.25"), [9], T0)
    assert fresh.updated_at > before


def _comparable(value: Any) -> tuple[type, str]:
    return type(value), str(getattr(value, "obj", value))


@pytest.mark.parametrize("add", [True, False], ids=["insert", "update"])
def test_instance_values_are_prepared_as_get_db_prep_save_does_whatever_their_type(add: bool) -> None:
    """The shortcut (the value itself) is taken only for a value of the type ``to_python`` gives; an int in a
    CharField, a float in a DecimalField, a string in an integer column still go through get_db_prep_save."""
    from django.db import connection

    station, _ = station_register(identity="FAST-T3")
    typed = ChargingTransaction(station=station, transaction_id="T-1", started_at=T0, energy_wh=Decimal("1.5"))
    loose = ChargingTransaction(station_id=str(station.pk), transaction_id=42, started_at=T0, energy_wh=2.25)
    fields = fastorm._insert_fields(ChargingTransaction)
    plan = fastorm._instance_plan(fields, "default", add)
    for obj in (typed, loose):
        prepared = fastorm._values(plan, obj)
        for field, value in zip(fields, prepared, strict=True):
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                continue  # pre_save sets "now": compared below
            expected = field.get_db_prep_save(field.pre_save(obj, add), connection)
            assert _comparable(value) == _comparable(expected), field.name
    assert _comparable(fastorm._values(plan, loose)[[f.name for f in fields].index("transaction_id")]) == (str, "42")
    fastorm.insert([loose])
    stored = ChargingTransaction.objects.get(transaction_id="42")
    assert (stored.station_id, stored.energy_wh, stored.created_at is not None) == (station.pk, Decimal("2.25"), True)


def _sqlite_connection() -> Any:
    """A SQLite backend's wrapper beside the test database (its operations only: no statement is run)."""
    from django.db import connections
    from django.db.backends.sqlite3.base import DatabaseWrapper

    return DatabaseWrapper({**connections["default"].settings_dict, "ENGINE": "django.db.backends.sqlite3",
                            "NAME": ":memory:"})  # fmt: skip


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime:RuntimeWarning")
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_preparer_gives_what_get_db_prep_save_gives_on_each_backend(backend: str) -> None:
    from django.db import connection as default

    connection = default if backend == "postgresql" else _sqlite_connection()
    assert connection.vendor == backend
    values: list[Any] = [None, "text", 42, "42", True, T0, T0.replace(tzinfo=None), Decimal("12.500"), 1.25]
    checked = 0
    for model in (MeterSample, ChargingTransaction):
        for field in fastorm._insert_fields(model):
            prepare = fastorm.preparer(field, connection)
            for value in values:
                try:
                    expected = field.get_db_prep_save(value, connection)
                except Exception as exc:  # a value the field refuses: refused the same way
                    with pytest.raises(type(exc)):
                        prepare(value)
                    continue
                assert _comparable(prepare(value)) == _comparable(expected), (field.name, value)
                checked += 1
    assert checked > 100
