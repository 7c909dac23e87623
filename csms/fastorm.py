"""Model reads and writes for the hottest paths, without the ORM's per-call SQL compilation.

The ORM compiles every query anew: on the TransactionEvent path that was most of the CPU of an event (about 1 ms
per statement on the bench machine, against 0.3 ms for the same statement sent raw). These helpers build each
statement once per process from the models' metadata (so column lists and backend syntax stay the ORM's) and
prepare values the way ``Model.save()`` does (``pre_save`` for auto_now fields, ``get_db_prep_save``).

They cover only what they reproduce faithfully; anything else is refused with ``Unsupported`` when a statement is
first built (not at import: receivers connect in ``AppConfig.ready()``), so the check costs nothing per call:

- writes (``insert``, ``insert_returning_pk``, ``update``): no ``pre_save``/``post_save`` receivers for the model
  (``Model.save()`` sends them, these do not), and no ``GeneratedField`` or ``db_default`` among the columns
  written (``save()`` leaves the first out and reads both back);
- reads (``CompiledGet``): no ``GeneratedField`` or ``db_default`` among the columns read, only the model's own
  columns selected, and every condition an exact comparison (see ``CompiledGet``). Reads send ``pre_init``/
  ``post_init`` as the ORM does (``Model.from_db``), and the ORM sends no other signal for a read.
"""

from __future__ import annotations

import functools
import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar

from django.db import connections, models
from django.db.models import signals
from django.db.models.constants import OnConflict
from django.db.models.expressions import Col
from django.db.models.fields.related_lookups import RelatedExact
from django.db.models.lookups import Exact, IntegerFieldExact, Lookup
from django.db.models.query import QuerySet
from django.db.models.sql.where import WhereNode

M = TypeVar("M", bound=models.Model)

# Signals Model.save() sends and these writes do not.
SAVE_SIGNALS = {"pre_save": signals.pre_save, "post_save": signals.post_save}
# Lookups that bind their value as the field prepares it for any equality (no escaping, wrapping or splitting):
# not subclasses in general (JSONExact wraps its value, YearExact turns it into a range).
EXACT_LOOKUPS = (Exact, IntegerFieldExact, RelatedExact)

# Every model a statement was built for, with what for ("insert", "update", "get"): what the guard accepted.
_compiled_models: dict[type[models.Model], set[str]] = {}


class Unsupported(TypeError):
    """A model or query that these helpers would not treat as the ORM does."""


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def _check_columns(model: type[models.Model], fields: Sequence[models.Field[Any, Any]], what: str) -> None:
    for f in fields:
        if f.generated:
            raise Unsupported(f"fastorm cannot {what} {_label(model)}.{f.name}: a GeneratedField (the database "
                              "computes it; Model.save() leaves it out and reads it back)")  # fmt: skip
        if f.has_db_default():
            raise Unsupported(f"fastorm cannot {what} {_label(model)}.{f.name}: it has a db_default (Model.save() "
                              "writes DEFAULT and reads the value back)")  # fmt: skip


def check_write(model: type[models.Model], fields: Sequence[models.Field[Any, Any]], kind: str) -> None:
    """Raise ``Unsupported`` unless writing ``fields`` of ``model`` here is what ``Model.save()`` would do."""
    for name, signal in SAVE_SIGNALS.items():
        if signal.has_listeners(model):  # receivers for every sender (sender=None) included
            raise Unsupported(f"fastorm cannot write {_label(model)}: it has {name} receivers, which Model.save() "
                              "would call and fastorm does not (use the ORM for this model)")  # fmt: skip
    _check_columns(model, fields, "write")
    _compiled_models.setdefault(model, set()).add(kind)


def compiled_models() -> dict[type[models.Model], frozenset[str]]:
    """The models statements were built for in this process, with what for (for tests of the guard)."""
    return {model: frozenset(kinds) for model, kinds in _compiled_models.items()}


def reset() -> None:
    """Forget every compiled statement, so the guard runs again at the next use (tests)."""
    for cached in (
        _insert_fields,
        _insert_sql,
        _update_fields,
        _update_sql,
        _select_many_plan,
        _insert_plan,
        _update_plan,
    ):
        cached.cache_clear()
    for compiled in list(CompiledGet.instances):
        compiled._compiled = None
    for values in list(CompiledValues.instances):
        values._compiled = None
    _compiled_models.clear()


@contextmanager
def _cursor(using: str) -> Iterator[Any]:
    """A cursor of the connection's current transaction. On PostgreSQL it binds parameters on the server: psycopg
    then sends them apart from the statement (no quoting of every value in Python, which Django's default client-side
    binding does) and prepares a statement it sees repeatedly. Wrapped like Django's own cursors (error mapping,
    query logging in tests)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    # What Django's PostgreSQL backend does for its own cursors (private API; the stubs know neither call).
    cursor = connection._prepare_cursor(ServerBindingCursor(connection.connection))  # type: ignore[attr-defined,call-arg]
    try:
        yield cursor
    finally:
        cursor.close()


def _quote(alias: str, name: str | None) -> str:
    assert name is not None  # a concrete field's column, a model's table: never None
    return connections[alias].ops.quote_name(name)


@cache
def _insert_fields(model: type[models.Model]) -> tuple[models.Field[Any, Any], ...]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    check_write(model, fields, "insert")
    return fields


@cache
def _insert_sql(model: type[models.Model], alias: str, rows: int, ignore_conflicts: bool) -> str:
    connection = connections[alias]
    fields = _insert_fields(model)
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    columns = ", ".join(_quote(alias, f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, None, None) if ignore_conflicts else ""
    return (
        f"{connection.ops.insert_statement(on_conflict=on_conflict)} {_quote(alias, model._meta.db_table)} "
        f"({columns}) VALUES {', '.join([one] * rows)} {suffix}"
    ).rstrip()


def insert(
    objs: Sequence[models.Model], *, ignore_conflicts: bool = False, executemany: bool = False, using: str = "default"
) -> None:
    """INSERT new rows of one model (their primary keys are not read back): one multi-row statement, or with
    ``executemany`` one single-row statement sent once per row (psycopg pipelines it and the statement is prepared
    once: cheaper for the varying batch sizes of a group, see ``update_many``)."""
    if not objs:
        return
    model = type(objs[0])
    plan = _insert_plan(model, using)  # first: the guard runs before any value is prepared
    rows = [_values(plan, obj) for obj in objs]
    _send_insert(model, using, rows, ignore_conflicts, executemany)


def _send_insert(
    model: type[models.Model], using: str, rows: list[list[Any]], ignore_conflicts: bool, executemany: bool
) -> None:
    with _cursor(using) as cursor:
        if executemany:
            cursor.executemany(_insert_sql(model, using, 1, ignore_conflicts), rows)
        else:
            cursor.execute(_insert_sql(model, using, len(rows), ignore_conflicts), [v for row in rows for v in row])


# For a value of the exact type a field's ``to_python`` gives (checked per value), ``get_db_prep_save`` only checks
# it and hands it to the backend's adapter: the preparers below call the adapter alone. Exact classes: a subclass
# may prepare its values its own way. A value of any other type (an int in a CharField, a naive datetime) goes
# through get_db_prep_save.
_TYPED: dict[type[models.Field[Any, Any]], Callable[[Any], bool]] = {
    models.CharField: lambda v: type(v) is str,
    models.TextField: lambda v: type(v) is str,
    models.BooleanField: lambda v: type(v) is bool,
    models.DateTimeField: lambda v: type(v) is datetime and v.tzinfo is not None,
    models.DecimalField: lambda v: type(v) is Decimal and v.is_finite(),
}
_INTEGERS: frozenset[type[models.Field[Any, Any]]] = frozenset({
    models.IntegerField, models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
    models.PositiveBigIntegerField, models.PositiveSmallIntegerField,
})  # fmt: skip
_AUTO: frozenset[type[models.Field[Any, Any]]] = frozenset(
    {models.AutoField, models.BigAutoField, models.SmallAutoField}
)


def preparer(field: models.Field[Any, Any], connection: Any) -> Callable[[Any], Any]:
    """How one value of ``field`` goes to the driver: ``get_db_prep_save``'s result, by the backend's adapter alone
    for a value of the type ``to_python`` gives, else ``get_db_prep_save`` itself."""
    slow = functools.partial(_prep_save, field, connection)
    ops = connection.ops
    kind = type(field)
    typed = _TYPED.get(kind)
    if typed is not None:
        if kind is models.DateTimeField:
            adapt_datetime = ops.adapt_datetimefield_value
            return lambda value: None if value is None else adapt_datetime(value) if typed(value) else slow(value)
        if kind is models.DecimalField:
            adapt_decimal = ops.adapt_decimalfield_value
            digits, places = field.max_digits, field.decimal_places  # type: ignore[attr-defined]
            return lambda value: (
                None if value is None else adapt_decimal(value, digits, places) if typed(value) else slow(value)
            )
        return lambda value: value if value is None or typed(value) else slow(value)
    target = field.target_field if type(field) is models.ForeignKey else field
    if type(target) in _AUTO:  # a primary key: validate_autopk_value
        validate = ops.validate_autopk_value
        return lambda value: None if value is None else validate(value) if type(value) is int else slow(value)
    if type(target) in _INTEGERS:
        adapt_integer, internal = ops.adapt_integerfield_value, target.get_internal_type()
        return lambda value: (
            None if value is None else adapt_integer(value, internal) if type(value) is int else slow(value)
        )
    return slow


def _reader(field: models.Field[Any, Any], add: bool) -> Callable[[models.Model], Any]:
    """What ``field.pre_save(obj, add)`` returns: the attribute itself unless the field computes it (auto_now)."""
    plain = type(field).pre_save is models.Field.pre_save or (
        type(field).pre_save in (models.DateField.pre_save, models.DateTimeField.pre_save)
        and not getattr(field, "auto_now", False)
        and not getattr(field, "auto_now_add", False)
    )
    if plain:
        return operator.attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, add)


@cache
def _instance_plan(
    fields: tuple[models.Field[Any, Any], ...], alias: str, add: bool
) -> tuple[Callable[[models.Model], Any], ...]:
    """Per field, an instance's value as ``get_db_prep_save(pre_save(obj, add))`` gives it, built once."""
    connection = connections[alias]

    def column(field: models.Field[Any, Any]) -> Callable[[models.Model], Any]:
        read, prepare = _reader(field, add), preparer(field, connection)
        return lambda obj: prepare(read(obj))

    return tuple(column(f) for f in fields)


@cache
def _insert_plan(model: type[models.Model], alias: str) -> tuple[Callable[[models.Model], Any], ...]:
    # Keyed by the model, not by its fields: a tuple of fields hashes every Field (a Python __hash__) per lookup.
    return _instance_plan(_insert_fields(model), alias, True)


@cache
def _update_plan(
    model: type[models.Model], alias: str, names: tuple[str, ...] | None
) -> tuple[Callable[[models.Model], Any], ...]:
    return _instance_plan(_update_fields(model, names), alias, False)


def _values(plan: tuple[Callable[[models.Model], Any], ...], obj: models.Model) -> list[Any]:
    return [column(obj) for column in plan]


def _as_is(value: Any) -> Any:
    return value


def _prep_save(field: models.Field[Any, Any], connection: Any, value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


@cache
def _tuple_plan(model: type[models.Model], alias: str, names: tuple[str, ...]) -> tuple[Callable[[Any], Any], ...]:
    fields = _insert_fields(model)
    if names != tuple(f.attname for f in fields):
        raise ValueError(f"insert_tuples({model.__name__}): columns must be {[f.attname for f in fields]}")
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            raise Unsupported(f"insert_tuples cannot write {_label(model)}.{f.name}: its value comes from pre_save")
    return tuple(preparer(f, connections[alias]) for f in fields)


def insert_tuples(
    model: type[models.Model],
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    executemany: bool = False,
    using: str = "default",
) -> None:
    """INSERT rows given as tuples (no model instances): ``names`` are every insert column's attname, in the
    model's order (checked once); values of the types the fields' ``to_python`` gives. ``executemany`` as in
    ``insert``."""
    if not rows:
        return
    prepare = _tuple_plan(model, using, names)
    params = [[p(v) for p, v in zip(prepare, row, strict=True)] for row in rows]
    _send_insert(model, using, params, ignore_conflicts, executemany)


def insert_returning_pk(obj: models.Model, *, ignore_conflicts: bool = False, using: str = "default") -> Any:
    """INSERT one new row and set (and return) its primary key, as ``obj.save()`` would. With ``ignore_conflicts``
    a row that conflicts with an existing one is not inserted: None comes back and ``obj`` stays unsaved.

    The instance is then as ``CompiledGet`` would have loaded it: ``update_changed`` writes only the columns
    changed after the insert (saves reading back, in the same transaction, the row just written)."""
    model = type(obj)
    connection = connections[using]
    params = _values(_insert_plan(model, using), obj)
    # PostgreSQL's and SQLite's operations both have it; the base class's stub does not.
    returning, _ = connection.ops.return_insert_columns([model._meta.pk])  # type: ignore[attr-defined]
    with _cursor(using) as cursor:
        cursor.execute(f"{_insert_sql(model, using, 1, ignore_conflicts)} {returning}", params)
        row = cursor.fetchone()
    if row is None:
        return None
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = using
    attnames = _attnames(model)
    obj.__dict__[_LOADED] = (attnames, tuple(getattr(obj, name) for name in attnames))
    return obj.pk


@cache
def _attnames(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


@cache
def _update_fields(model: type[models.Model], names: tuple[str, ...] | None) -> tuple[models.Field[Any, Any], ...]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    if names is not None:
        wanted = set(names)
        fields = tuple(f for f in fields if f.name in wanted or f.attname in wanted)
        if len(fields) != len(wanted):
            raise ValueError(f"unknown or primary-key fields in {sorted(wanted)} for {model.__name__}")
    check_write(model, fields, "update")
    return fields


@cache
def _update_sql(model: type[models.Model], alias: str, names: tuple[str, ...] | None = None) -> str:
    assignments = ", ".join(f"{_quote(alias, f.column)} = %s" for f in _update_fields(model, names))
    pk = _quote(alias, model._meta.pk.column)
    return f"UPDATE {_quote(alias, model._meta.db_table)} SET {assignments} WHERE {pk} = %s"


def update(obj: models.Model, fields: Sequence[str] | None = None, *, using: str = "default") -> None:
    """UPDATE the columns of an existing row from the instance (every column, or only ``fields`` as with
    ``save(update_fields=...)``): what ``obj.save()`` sends, compiled once."""
    model = type(obj)
    connection = connections[using]
    names = tuple(fields) if fields is not None else None
    params = _values(_update_plan(model, using, names), obj)
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    with _cursor(using) as cursor:
        cursor.execute(_update_sql(model, using, names), params)


_LOADED = "_fastorm_loaded"


@cache
def _always_written(model: type[models.Model]) -> frozenset[str]:
    """Columns update_changed writes whatever their value: JSON (a value may have been changed in place, so it
    equals its loaded self) and auto_now (set by pre_save, as save() does)."""
    return frozenset(
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, models.JSONField) or getattr(f, "auto_now", False)
    )


def update_changed(obj: models.Model, *, using: str = "default") -> None:
    """:func:`update` of only the columns whose value differs from what ``CompiledGet`` loaded (JSON and auto_now
    columns always): fewer values prepared and sent. An instance not loaded by ``CompiledGet``: every column."""
    loaded = obj.__dict__.get(_LOADED)
    if loaded is None:
        update(obj, using=using)
        return
    attnames, row = loaded
    always = _always_written(type(obj))
    pk = type(obj)._meta.pk.attname
    names = tuple(
        name
        for name, before in zip(attnames, row, strict=True)
        if name != pk and (name in always or getattr(obj, name) != before)
    )
    if names:
        update(obj, names, using=using)
    obj.__dict__[_LOADED] = (attnames, tuple(getattr(obj, name) for name in attnames))


def _path(expression: Any) -> str:
    """``started_at__date`` for TruncDate(Col(started_at)): how the lookup was written, for error messages."""
    if isinstance(expression, Col):
        return expression.target.name
    name, sources = getattr(expression, "lookup_name", None), expression.get_source_expressions()
    return f"{_path(sources[0])}__{name}" if name and sources else repr(expression)


def _lookup_name(lookup: Lookup) -> str:
    return f"{_path(lookup.lhs)}__{lookup.lookup_name}"


def _check_where(model: type[models.Model], node: Any, aliases: list[Any]) -> None:
    """Every condition an exact comparison of a column, or of an expression the queryset names itself
    (``alias(x=Lower("f")).filter(x=v)``): values are bound as given, which for these is what the ORM binds
    (the sentinel check already refuses a value the field's preparation changes)."""
    if isinstance(node, WhereNode):
        for child in node.children:
            _check_where(model, child, aliases)
        return
    label = _label(model)
    if not isinstance(node, Lookup):
        raise Unsupported(f"CompiledGet on {label}: a condition of type {type(node).__name__} is not a field lookup")
    if type(node) not in EXACT_LOOKUPS:
        raise Unsupported(f"CompiledGet on {label}: {_lookup_name(node)} is not an exact comparison (its value "
                          "would be bound without the lookup's own escaping, wrapping or splitting)")  # fmt: skip
    if not isinstance(node.lhs, Col) and not any(node.lhs is a for a in aliases):
        # A transform in the lookup path (field__date=...): its lookups may prepare values their own way.
        raise Unsupported(f"CompiledGet on {label}: {_lookup_name(node)} compares a transform; compare a column, "
                          "or name the expression with alias() and compare that")  # fmt: skip


class CompiledGet:
    """A one-row ORM query compiled once, run many times with other values for its parameters.

    Conditions must be exact comparisons (``field=value``, or ``alias(name=<expression>).filter(name=value)``);
    their values are bound as given, without the lookup's preparation, so other lookups (``iexact``, ``in``,
    ``gt``, ``contains``, transforms such as ``field__date``) are refused at compilation (``Unsupported``).

    ``CompiledGet(lambda a, b: Model.objects.select_for_update().filter(x=a, y=b))`` then ``.get(1, "t")``:
    the queryset is built with sentinel values to learn where each parameter goes in the compiled SQL; rows are
    converted with the compiler's own converters, as the ORM would.
    """

    # Every instance, so tests can check the guard against all of them (a module constant lives as long as its
    # module; a test's own ones go away with it).
    instances: ClassVar[weakref.WeakSet[CompiledGet]] = weakref.WeakSet()

    def __init__(self, build: Callable[..., QuerySet[Any]], sentinels: Sequence[Any], using: str = "default") -> None:
        self.build = build
        self.sentinels = list(sentinels)
        self.using = using
        self._compiled: tuple[str, list[int | None], list[Any], list[str], Any, Any] | None = None
        CompiledGet.instances.add(self)

    def _compile(self) -> tuple[str, list[int | None], list[Any], list[str], Any, Any]:
        if self._compiled is None:
            qs = self.build(*self.sentinels)
            model = qs.model
            _check_where(model, qs.query.where, list(qs.query.annotations.values()))
            compiler = qs.query.get_compiler(using=self.using)
            sql, params = compiler.as_sql()
            # Where each sentinel went (None: a constant of the query itself).
            slots = [self.sentinels.index(p) if p in self.sentinels else None for p in params]
            if sorted(s for s in slots if s is not None) != list(range(len(self.sentinels))):
                raise ValueError("each sentinel must appear exactly once among the query's parameters")
            columns = [col for col, _, _ in compiler.select]
            own = set(model._meta.concrete_fields)
            if not all(isinstance(col, Col) and col.target in own for col in columns):
                raise Unsupported(f"CompiledGet on {_label(model)}: selects more than the model's own columns "
                                  "(select_related, annotate or values are not supported)")  # fmt: skip
            _check_columns(model, [col.target for col in columns], "read")
            attnames = [col.target.attname for col in columns]
            converters = compiler.get_converters(columns)
            self._compiled = (sql, slots, list(params), attnames, compiler, converters)
            _compiled_models.setdefault(model, set()).add("get")
        return self._compiled

    def compile(self) -> None:
        """Build the statement now (it is built at the first ``get`` otherwise); raises ``Unsupported``."""
        self._compile()

    def get(self, *values: Any) -> Any:
        sql, slots, constants, attnames, compiler, converters = self._compile()
        params = [values[s] if s is not None else constants[i] for i, s in enumerate(slots)]
        with _cursor(self.using) as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = next(iter(compiler.apply_converters([row], converters)))
        model = compiler.query.model
        obj = model.from_db(self.using, attnames, row)
        obj.__dict__[_LOADED] = (attnames, row)  # what update_changed compares with
        return obj


def _prepared_sentinel(value: Any, connection: Any) -> Any:
    """A sentinel as the ORM binds it for a column of its type: an aware datetime goes through
    ``adapt_datetimefield_value`` (a string on SQLite, itself on PostgreSQL); ints and strings as they are."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("CompiledValues: a datetime sentinel must be aware (USE_TZ)")
        return connection.ops.adapt_datetimefield_value(value)
    if type(value) not in (int, str):
        raise TypeError(f"CompiledValues: sentinels are ints, strings or aware datetimes, not {type(value).__name__}")
    return value


class CompiledValues:
    """A rows-returning ORM query (``values_list``, annotations, subqueries, any lookups) compiled once and run many
    times with other values for its parameters; rows come back as tuples through the compiler's converters.

    The queryset is built with sentinel values (ints, strings, aware datetimes) and each parameter of the compiled
    SQL that equals a sentinel, as the ORM binds a value of that type, becomes a slot; a sentinel may fill several
    slots. A lookup that transforms its value (``contains`` wraps it, a JSON field dumps it, ``__year`` makes a
    range) leaves its sentinel unrecognisable: compilation then fails (``Unsupported``) instead of binding a value
    the ORM would have prepared. A list (``__in``) is one sentinel per element: build one instance per length.
    """

    instances: ClassVar[weakref.WeakSet[CompiledValues]] = weakref.WeakSet()

    def __init__(self, build: Callable[..., QuerySet[Any]], sentinels: Sequence[Any], using: str = "default") -> None:
        self.build = build
        self.sentinels = list(sentinels)
        self.using = using
        self._compiled: tuple[str, list[int | None], list[Any], list[Callable[[Any], Any]], Any, Any] | None = None
        CompiledValues.instances.add(self)

    def _compile(self) -> tuple[str, list[int | None], list[Any], list[Callable[[Any], Any]], Any, Any]:
        if self._compiled is None:
            connection = connections[self.using]
            qs = self.build(*self.sentinels)
            compiler = qs.query.get_compiler(using=self.using)
            sql, params = compiler.as_sql()
            prepared = [_prepared_sentinel(s, connection) for s in self.sentinels]
            slots: list[int | None] = []
            for p in params:
                hits = [i for i, s in enumerate(prepared) if type(p) is type(s) and p == s]
                if len(hits) > 1:
                    raise ValueError("CompiledValues: two sentinels have the same prepared value")
                slots.append(hits[0] if hits else None)
            missing = sorted(set(range(len(prepared))) - {s for s in slots if s is not None})
            if missing:
                raise Unsupported(
                    f"CompiledValues on {_label(qs.model)}: sentinel(s) {[self.sentinels[i] for i in missing]!r} not "
                    "found among the compiled parameters (a lookup prepares its value in its own way)"
                )
            preps: list[Callable[[Any], Any]] = [
                connection.ops.adapt_datetimefield_value if isinstance(s, datetime) else _as_is for s in self.sentinels
            ]
            columns = [col for col, _, _ in compiler.select]
            converters = compiler.get_converters(columns)
            self._compiled = (sql, slots, list(params), preps, compiler, converters)
        return self._compiled

    def compile(self) -> None:
        """Build the statement now (it is built at the first ``rows`` otherwise); raises ``Unsupported``."""
        self._compile()

    def rows(self, *values: Any) -> list[tuple[Any, ...]]:
        sql, slots, constants, preps, compiler, converters = self._compile()
        bound = [preps[i](v) for i, v in enumerate(values)]
        params = [bound[s] if s is not None else constants[i] for i, s in enumerate(slots)]
        with _cursor(self.using) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters and rows:
            rows = [tuple(r) for r in compiler.apply_converters(rows, converters)]
        return rows


# --- Many rows at once (the group commit's write-behind buffer, csms/groupscope.py) ---------------------------


def _concrete(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise Unsupported(f"{_label(model)}.{name} is not a column")
    return field


@cache
def _select_many_plan(
    model: type[models.Model], alias: str, key_names: tuple[str, ...], keys: int, for_update: bool
) -> tuple[str, list[str], Any, Any]:
    """SELECT every column of the rows whose ``key_names`` equal one of ``keys`` key tuples, in primary-key order
    (one lock order for every group), optionally FOR UPDATE; with the compiler's converters for the columns."""
    connection = connections[alias]
    qs = model._default_manager.filter(pk=-1)
    compiler = qs.query.get_compiler(using=alias)
    compiler.as_sql()  # sets up compiler.select
    columns = [col for col, _, _ in compiler.select]
    own = set(model._meta.concrete_fields)
    if not all(isinstance(col, Col) and col.target in own for col in columns):
        raise Unsupported(f"select_many on {_label(model)}: the default manager selects more than the model's columns")
    _check_columns(model, [col.target for col in columns], "read")
    key_fields = [_concrete(model, name) for name in key_names]
    _check_columns(model, key_fields, "read")
    _compiled_models.setdefault(model, set()).add("get")
    table = _quote(alias, model._meta.db_table)
    select = ", ".join(f"{table}.{_quote(alias, col.target.column)}" for col in columns)
    key_cols = ", ".join(_quote(alias, f.column) for f in key_fields)
    one = "(" + ", ".join(["%s"] * len(key_fields)) + ")"
    lock = " FOR UPDATE" if for_update and connection.features.has_select_for_update else ""
    sql = (
        f"SELECT {select} FROM {table} WHERE ({key_cols}) IN (VALUES {', '.join([one] * keys)}) "
        f"ORDER BY {table}.{_quote(alias, model._meta.pk.column)}{lock}"
    )
    attnames = [col.target.attname for col in columns]
    return sql, attnames, compiler, compiler.get_converters(columns)


def select_many(
    model: type[M],
    key_names: Sequence[str],
    keys: Sequence[tuple[Any, ...]],
    *,
    for_update: bool = False,
    using: str = "default",
) -> dict[tuple[Any, ...], M]:
    """The rows of ``model`` whose ``key_names`` columns equal one of ``keys`` (a unique key: one row per key), as
    instances loaded as ``CompiledGet`` loads them (``update_changed`` knows what changed), by key; one statement,
    rows locked in primary-key order when ``for_update``. Key values are bound as given (ints, strings)."""
    if not keys:
        return {}
    names = tuple(key_names)
    sql, attnames, compiler, converters = _select_many_plan(model, using, names, len(keys), for_update)
    params = [value for key in keys for value in key]
    with _cursor(using) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if converters and rows:
        rows = list(compiler.apply_converters(rows, converters))
    found: dict[tuple[Any, ...], M] = {}
    positions = [attnames.index(_concrete(model, name).attname) for name in names]
    for row in rows:
        row = tuple(row)
        obj = model.from_db(using, attnames, row)
        obj.__dict__[_LOADED] = (attnames, row)
        found[tuple(row[p] for p in positions)] = obj
    return found


def _changed_names(obj: models.Model) -> tuple[str, ...] | None:
    """What ``update_changed`` would write: None for an instance not loaded here (every column)."""
    loaded = obj.__dict__.get(_LOADED)
    if loaded is None:
        return None
    attnames, row = loaded
    always = _always_written(type(obj))
    pk = type(obj)._meta.pk.attname
    return tuple(
        name
        for name, before in zip(attnames, row, strict=True)
        if name != pk and (name in always or getattr(obj, name) != before)
    )


def update_many(objs: Sequence[models.Model], *, using: str = "default") -> None:
    """``update_changed`` of many instances of one model in one call: the union of their changed columns written for
    all of them (each row's current values: the same result), as one single-row UPDATE sent with ``executemany``
    (psycopg pipelines it: one round trip; a short statement prepared once, where a statement of many rows would be
    parsed anew for every size)."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[using]
    wanted: set[str] = set()
    for obj in objs:
        names = _changed_names(obj)
        if names is None:
            wanted.update(f.attname for f in _update_fields(model, None))
        else:
            wanted.update(names)
    if wanted:
        order = [f.attname for f in _update_fields(model, None)]
        names = tuple(sorted(wanted, key=order.index))
        plan = _update_plan(model, using, names)
        pk = preparer(model._meta.pk, connection)
        rows = [[*_values(plan, obj), pk(obj.pk)] for obj in objs]
        with _cursor(using) as cursor:
            cursor.executemany(_update_sql(model, using, names), rows)
    for obj in objs:
        loaded = obj.__dict__.get(_LOADED)
        attnames = loaded[0] if loaded else [f.attname for f in model._meta.concrete_fields]
        obj.__dict__[_LOADED] = (attnames, tuple(getattr(obj, name) for name in attnames))
