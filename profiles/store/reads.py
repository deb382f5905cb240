"""Plain-SQL reads for the hot paths of the profile APIs, turned into model instances.

Building and compiling a query through the ORM costs more CPU on every call than SQLite
needs to answer it: on the 2-core machines of docs/performance.md, about half a
millisecond a query, more than a whole minimal Django request. The look-ups the profile APIs
make on every call are therefore written out once, in SQL that SQLite and PostgreSQL both
accept, with table and column names taken from the models' ``_meta``; their rows become
model instances through the same converters the ORM applies (aware datetimes, decoded
JSON). Everything else keeps using the ORM.

They run on the driver's own cursor, with the statement already in the driver's parameter
style (:func:`execute`): Django's cursor wrapper rewrites ``%s`` placeholders with a regular
expression and goes through several layers on every call, which costs more than SQLite's
answer. On PostgreSQL each is prepared once per connection
(docs/operations.md#database-connections). Errors are still Django's (``wrap_database_errors``), and whenever something
watches queries (``assertNumQueries``, ``DEBUG``'s query log, an execute wrapper) they go
through Django's cursor as any other query, so they are seen and counted.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.base import ModelState
from django.db.models.expressions import Col

from profiles.store import KeyKind
from profiles.store.models import Profile

Converter = Callable[[Any, Any, Any], Any]
ColumnConverters = tuple[int, Col, list[Converter]]


def table(model: type[models.Model]) -> str:
    return model._meta.db_table


def column(model: type[models.Model], name: str) -> str:
    """The database column of ``model``'s field ``name``."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"{model.__name__}.{name} has no column")
    return field.column


Fields = tuple[str, ...] | None
"""Names of some of a model's concrete fields, or ``None`` for all of them."""


@functools.cache
def _fields(model: type[models.Model], names: Fields) -> tuple[models.Field[Any, Any], ...]:
    """``model``'s concrete fields named in ``names`` (all when ``None``), in field order."""
    concrete = tuple(model._meta.concrete_fields)
    if names is None:
        return concrete
    unknown = set(names) - {field.name for field in concrete}
    if unknown:
        raise TypeError(f"{model.__name__} has no column for {', '.join(sorted(unknown))}")
    return tuple(field for field in concrete if field.name in names)


def columns(model: type[models.Model], alias: str, fields: Fields = None) -> str:
    """The concrete columns of ``model`` (those of ``fields``, or every one), in field order,
    qualified by ``alias``."""
    return ", ".join(f"{alias}.{field.column}" for field in _fields(model, fields))


def width(model: type[models.Model], fields: Fields = None) -> int:
    return len(_fields(model, fields))


class _KeptForLater(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def profile_sql(template: str) -> str:
    """``template`` with ``{profile}`` and each ``{<field>}`` of ``Profile`` made the names
    ``_meta`` gives them; any other ``{placeholder}`` is kept for the caller to fill."""
    names = {field.name: str(field.column) for field in Profile._meta.concrete_fields}
    return template.format_map(_KeptForLater(names, profile=table(Profile)))


# Assembled once, at import; every value a caller supplies goes in as a query parameter.
_PROFILE = f"""
SELECT {columns(Profile, "p")} FROM {table(Profile)} p
WHERE p.{column(Profile, "client")} = %s AND p.{{column}} = %s
"""  # noqa: S608


def profile(client_id: int, kind: KeyKind, key: str) -> Profile | None:
    """The client's profile named ``key`` (a pcId or a thirdPartyId), in one indexed query."""
    row = fetch_one(_PROFILE.format(column=kind.column), [client_id, key])
    return None if row is None else instance(Profile, row)


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with execute(sql, params) as cursor:
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


@functools.cache
def _in_qmark_style(sql: str) -> str:
    """``sql`` with SQLite's placeholders; none of these statements holds a literal ``%``."""
    return sql.replace("%s", "?")


@contextmanager
def execute(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Iterator[Any]:
    """A cursor that has run ``sql`` (``%s`` placeholders) with ``params``; see the docstring."""
    database = connections[DEFAULT_DB_ALIAS]
    if database.queries_logged or database.execute_wrappers:
        with database.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor
        return
    database.close_if_health_check_failed()
    database.ensure_connection()
    with database.wrap_database_errors:
        driver: Any = (
            psycopg.Cursor(database.connection)
            if database.vendor == "postgresql"
            else database.connection.cursor()
        )
        try:
            if isinstance(driver, psycopg.Cursor):
                _execute_prepared(driver, sql, params)
            else:
                driver.execute(_in_qmark_style(sql), params)
            yield driver
        finally:
            driver.close()


def _execute_prepared(
    cursor: psycopg.Cursor[Any], sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> None:
    """Run ``sql`` on a server-binding cursor, prepared once per connection.

    Planning the gate's three-table join costs PostgreSQL several times what running it
    does. Django keeps prepared statements off on its connections, and psycopg, once they
    are on, counts every statement it runs toward preparing it, the ORM's too: a statement
    holding a batch file's chunk as a literal would stay in that count. So they are on only
    while this one statement is sent.
    """
    connection = cursor.connection
    connection.prepare_threshold = 0
    try:
        cursor.execute(sql, params, prepare=settings.DATABASE_PREPARED_STATEMENTS)
    finally:
        connection.prepare_threshold = None


def instance[M: models.Model](model: type[M], values: Sequence[Any], fields: Fields = None) -> M:
    """``model`` built from a row of its concrete columns, as the ORM would build it.

    As ``Model.from_db`` builds it, less the work a row of every concrete column does not
    need: ``__init__``'s argument checks and the ``pre_init``/``post_init`` signals, which
    nothing in this project listens to for these models. A row of some columns only (those
    :func:`columns` gave for the same ``fields``) leaves the other fields deferred, as
    ``QuerySet.only`` does: reading one of them loads it with a query of its own.
    """
    database = connections[DEFAULT_DB_ALIAS]
    converted = list(values)
    for index, field_column, converters in _converters(database, model, fields):
        value = converted[index]
        if value is not None:
            for converter in converters:
                value = converter(value, field_column, database)
            converted[index] = value
    built = model.__new__(model)
    state = ModelState()
    state.adding = False
    state.db = database.alias
    built._state = state
    built.__dict__.update(zip(_attnames(model, fields), converted, strict=True))
    return built


@functools.cache
def _attnames(model: type[models.Model], fields: Fields) -> tuple[str, ...]:
    return tuple(field.attname for field in _fields(model, fields))


# Per database connection (each thread has its own), model and fields: the columns that need
# converting, with their converters in the order the ORM's compiler applies them (the
# backend's, then the field's own).
_CONVERTERS: weakref.WeakKeyDictionary[
    Any, dict[tuple[type[models.Model], Fields], list[ColumnConverters]]
] = weakref.WeakKeyDictionary()


def _converters(database: Any, model: type[models.Model], fields: Fields) -> list[ColumnConverters]:
    by_model = _CONVERTERS.setdefault(database, {})
    key = (model, fields)
    if key not in by_model:
        found = []
        for index, field in enumerate(_fields(model, fields)):
            field_column = field.get_col(model._meta.db_table)
            converters = [
                *database.ops.get_db_converters(field_column),
                *field_column.get_db_converters(database),
            ]
            if converters:
                found.append((index, field_column, converters))
        by_model[key] = found
    return by_model[key]
