"""Model reads and writes for the hottest paths, without the ORM's per-call SQL compilation.

The ORM compiles every query anew: on the TransactionEvent path that was most of the CPU of an event (about 1 ms
per statement on the bench machine, against 0.3 ms for the same statement sent raw). These helpers build each
statement once per process from the models' metadata (so column lists and backend syntax stay the ORM's) and
prepare values the way ``Model.save()`` does (``pre_save`` for auto_now fields, ``get_db_prep_save``).
Signals are not sent, as with ``bulk_create``/``update``: use them only for models without receivers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.db import connections, models
from django.db.models.constants import OnConflict
from django.db.models.query import QuerySet

M = TypeVar("M", bound=models.Model)


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


def _concrete(model: type[models.Model], *, with_pk: bool) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]


@cache
def _insert_sql(model: type[models.Model], alias: str, rows: int, ignore_conflicts: bool) -> str:
    connection = connections[alias]
    fields = _concrete(model, with_pk=False)
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
    fields = _concrete(model, with_pk=False)
    params: list[Any] = []
    for obj in objs:
        params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
    with _cursor(using) as cursor:
        cursor.execute(_insert_sql(model, using, len(objs), ignore_conflicts), params)


def insert_returning_pk(obj: models.Model, *, using: str = "default") -> Any:
    """INSERT one new row and set (and return) its primary key, as ``obj.save()`` would."""
    model = type(obj)
    connection = connections[using]
    fields = _concrete(model, with_pk=False)
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    returning, _ = connection.ops.return_insert_columns([model._meta.pk])
    with _cursor(using) as cursor:
        cursor.execute(f"{_insert_sql(model, using, 1, False)} {returning}", params)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = using
    return obj.pk


def _update_fields(model: type[models.Model], names: tuple[str, ...] | None) -> list[models.Field[Any, Any]]:
    fields = _concrete(model, with_pk=False)
    if names is None:
        return fields
    wanted = set(names)
    found = [f for f in fields if f.name in wanted or f.attname in wanted]
    if len(found) != len(wanted):
        raise ValueError(f"unknown or primary-key fields in {sorted(wanted)} for {model.__name__}")
    return found


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


class CompiledGet:
    """A one-row ORM query compiled once, run many times with other values for its parameters.

    For lookups that pass their value through unchanged (exact, comparisons): values are bound as given, without
    the lookup's own preparation (``iexact``/``contains`` escape or wrap theirs).

    ``CompiledGet(lambda a, b: Model.objects.select_for_update().filter(x=a, y=b))`` then ``.get(1, "t")``:
    the queryset is built with sentinel values to learn where each parameter goes in the compiled SQL; rows are
    converted with the compiler's own converters, as the ORM would.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], sentinels: Sequence[Any], using: str = "default") -> None:
        self.build = build
        self.sentinels = list(sentinels)
        self.using = using
        self._compiled: tuple[str, list[int | None], list[Any], list[str], Any, Any] | None = None

    def _compile(self) -> tuple[str, list[int | None], list[Any], list[str], Any, Any]:
        if self._compiled is None:
            qs = self.build(*self.sentinels)
            compiler = qs.query.get_compiler(using=self.using)
            sql, params = compiler.as_sql()
            # Where each sentinel went (None: a constant of the query itself).
            slots = [self.sentinels.index(p) if p in self.sentinels else None for p in params]
            if sorted(s for s in slots if s is not None) != list(range(len(self.sentinels))):
                raise ValueError("each sentinel must appear exactly once among the query's parameters")
            columns = [col for col, _, _ in compiler.select]
            attnames = [col.target.attname for col in columns]
            converters = compiler.get_converters(columns)
            self._compiled = (sql, slots, list(params), attnames, compiler, converters)
        return self._compiled

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
