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

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    for cached in (_insert_fields, _insert_sql, _update_fields, _update_sql):
        cached.cache_clear()
    for compiled in list(CompiledGet.instances):
        compiled._compiled = None
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
    cursor = connection._prepare_cursor(ServerBindingCursor(connection.connection))
    try:
        yield cursor
    finally:
        cursor.close()


def _quote(alias: str, name: str) -> str:
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


def insert(objs: Sequence[models.Model], *, ignore_conflicts: bool = False, using: str = "default") -> None:
    """INSERT new rows of one model in one statement (their primary keys are not read back)."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[using]
    fields = _insert_fields(model)  # first: the guard runs before any value is prepared
    params: list[Any] = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    with _cursor(using) as cursor:
        cursor.execute(_insert_sql(model, using, len(objs), ignore_conflicts), params)


def insert_returning_pk(obj: models.Model, *, using: str = "default") -> Any:
    """INSERT one new row and set (and return) its primary key, as ``obj.save()`` would."""
    model = type(obj)
    connection = connections[using]
    fields = _insert_fields(model)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    returning, _ = connection.ops.return_insert_columns([model._meta.pk])
    with _cursor(using) as cursor:
        cursor.execute(f"{_insert_sql(model, using, 1, False)} {returning}", params)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = using
    return obj.pk


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
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in _update_fields(model, names)]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    with _cursor(using) as cursor:
        cursor.execute(_update_sql(model, using, names), params)


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
        return model.from_db(self.using, attnames, row)
