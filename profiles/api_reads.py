"""The reads every profile API call makes, as plain SQL.

Building and compiling a query through the ORM costs more CPU on every call than SQLite
needs to answer it: on the 2-core machines of README "Performance", about half a
millisecond a query, more than a whole minimal Django request. The look-ups the profile APIs
make on every call are therefore written out once here, in SQL that SQLite and PostgreSQL
both accept, and their rows become model instances through the same converters the ORM
applies (aware datetimes, decoded JSON). Everything else keeps using the ORM.
"""

from __future__ import annotations

import functools
import hmac
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.expressions import Col

from profiles import tokens
from profiles.models import Client, Profile, ProfileToken
from profiles.store import KeyKind

Converter = Callable[[Any, Any, Any], Any]
ColumnConverters = tuple[int, Col, list[Converter]]


@dataclass(frozen=True, slots=True)
class ApiClient:
    """A client as the profile API gate needs it: with its "Require Authentication"."""

    client: Client
    require_authentication: bool


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A stored token found by its digest, with the client it belongs to."""

    token: ProfileToken
    owner: ApiClient


# The statements are assembled once, at import, from the models' own column names; every
# value a caller supplies goes in as a query parameter.
def _columns(model: type[models.Model], alias: str) -> str:
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


_CLIENT = f"""
SELECT {_columns(Client, "c")}, s.require_authentication
FROM profiles_client c LEFT JOIN profiles_profileapisettings s ON s.client_id = c.id
WHERE c.code = %s
"""  # noqa: S608

_TOKEN = f"""
SELECT {_columns(ProfileToken, "t")}, {_columns(Client, "c")}, s.require_authentication
FROM profiles_profiletoken t
JOIN profiles_client c ON c.id = t.client_id
LEFT JOIN profiles_profileapisettings s ON s.client_id = c.id
WHERE t.digest = %s
"""  # noqa: S608

_PROFILE = f"""
SELECT {_columns(Profile, "p")} FROM profiles_profile p
WHERE p.client_id = %s AND p.{{column}} = %s
"""  # noqa: S608


def client(code: str) -> ApiClient | None:
    """The client named ``code`` and its setting, in one query; ``None`` when unknown."""
    row = _fetch_one(_CLIENT, [code])
    if row is None:
        return None
    return ApiClient(_instance(Client, row[:-1]), bool(row[-1]))


def token(candidate: str) -> StoredToken | None:
    """The stored token ``candidate`` is, with its client and setting, in one indexed query.

    ``None`` for a malformed candidate (no query at all) or an unknown one.
    """
    try:
        tokens.check_format(candidate)
    except tokens.MalformedToken:
        return None
    presented = tokens.digest(candidate)
    row = _fetch_one(_TOKEN, [presented])
    if row is None:
        return None
    width = len(ProfileToken._meta.concrete_fields)
    found = _instance(ProfileToken, row[:width])
    if not hmac.compare_digest(found.digest, presented):
        return None
    owner = _instance(Client, row[width:-1])
    found.client = owner
    return StoredToken(found, ApiClient(owner, bool(row[-1])))


def profile(client_id: int, kind: KeyKind, key: str) -> Profile | None:
    """The client's profile named ``key`` (a pcId or a thirdPartyId), in one indexed query."""
    row = _fetch_one(_PROFILE.format(column=kind.column), [client_id, key])
    return None if row is None else _instance(Profile, row)


def _fetch_one(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def _instance[M: models.Model](model: type[M], values: Sequence[Any]) -> M:
    database = connections[DEFAULT_DB_ALIAS]
    converted = list(values)
    for index, column, converters in _converters(database, model):
        value = converted[index]
        if value is not None:
            for converter in converters:
                value = converter(value, column, database)
            converted[index] = value
    return model.from_db(database.alias, _attnames(model), converted)


@functools.cache
def _attnames(model: type[models.Model]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


# Per database connection (each thread has its own) and model: the columns that need
# converting, with their converters in the order the ORM's compiler applies them (the
# backend's, then the field's own).
_CONVERTERS: weakref.WeakKeyDictionary[Any, dict[type[models.Model], list[ColumnConverters]]] = (
    weakref.WeakKeyDictionary()
)


def _converters(database: Any, model: type[models.Model]) -> list[ColumnConverters]:
    by_model = _CONVERTERS.setdefault(database, {})
    if model not in by_model:
        found = []
        for index, field in enumerate(model._meta.concrete_fields):
            column = field.get_col(model._meta.db_table)
            converters = [
                *database.ops.get_db_converters(column),
                *column.get_db_converters(database),
            ]
            if converters:
                found.append((index, column, converters))
        by_model[model] = found
    return by_model[model]
