"""The profile store on SQLite: ``json_patch`` merge, one statement per chunk.

A chunk that may create profiles and whose caller needs no pcIds takes the fast path: one
prepared upsert run over the rows with ``executemany`` inside a savepoint. When every row
was applied (the usual case) that is the answer; when some were not (a merge past the size
limit) the savepoint is rolled back and the chunk runs again through the ``json_each``
statement, whose ``RETURNING`` says which rows were applied.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection, transaction

from profiles.rules.limits import MAX_PROFILE_ATTRIBUTES_BYTES
from profiles.store import KeyKind, Row, reads
from profiles.store.reads import profile_sql

_encode = json.encoder.encode_basestring

_INSERT = profile_sql(
    """
INSERT INTO {profile} ({client}, {pc_id}, {third_party_id}, {attributes}, {created_at}, {modified_at})
SELECT %s, j.value ->> 1, {third_party_value}, j.value -> 2, %s, %s
FROM json_each(%s) AS j WHERE true
ON CONFLICT ({client}, {column}) DO UPDATE SET
    {attributes} = json_patch({profile}.{attributes}, excluded.{attributes}),
    {modified_at} = excluded.{modified_at}
WHERE length(CAST(json_patch({profile}.{attributes}, excluded.{attributes}) AS BLOB)) <= %s
RETURNING {column}, {pc_id}
"""
)

_UPSERT_EACH_ROW = profile_sql(
    """
INSERT INTO {profile} ({client}, {pc_id}, {third_party_id}, {attributes}, {created_at}, {modified_at})
VALUES (%s, %s, {third_party_value}, %s, %s, %s)
ON CONFLICT ({client}, {column}) DO UPDATE SET
    {attributes} = json_patch({profile}.{attributes}, excluded.{attributes}),
    {modified_at} = excluded.{modified_at}
WHERE length(CAST(json_patch({profile}.{attributes}, excluded.{attributes}) AS BLOB)) <= {limit}
"""
)

# The keys are looked up first, one unique-index search each, in a materialized CTE: joined
# directly in the UPDATE, SQLite's planner (without statistics) walks every profile of the
# client instead, which turns one update into a scan of the whole client.
_UPDATE = profile_sql(
    """
WITH found AS MATERIALIZED (
    SELECT p.{id} AS id, j.value -> 2 AS patch
    FROM json_each(%s) AS j CROSS JOIN {profile} AS p
    WHERE p.{client} = %s AND p.{column} = j.value ->> 0
)
UPDATE {profile} SET
    {attributes} = json_patch({profile}.{attributes}, found.patch),
    {modified_at} = %s
FROM found
WHERE {profile}.{id} = found.id
  AND length(CAST(json_patch({profile}.{attributes}, found.patch) AS BLOB)) <= %s
RETURNING {profile}.{column}, {profile}.{pc_id}
"""
)

_EXISTING = profile_sql(
    """
SELECT {column} FROM {profile}
WHERE {client} = %s AND {column} IN (SELECT value FROM json_each(%s))
"""
)


class SQLiteEngine:
    def merge(
        self,
        client_id: int,
        kind: KeyKind,
        payload: list[Row],
        *,
        create_missing: bool,
        now: datetime,
        with_pc_ids: bool = True,
    ) -> dict[str, str]:
        if not payload:
            return {}
        stamp = connection.ops.adapt_datetimefield_value(now)
        if create_missing and not with_pc_ids:
            applied = self._upsert_each_row(client_id, kind, payload, stamp)
            if applied is not None:
                return applied
        # Keys and pcIds are JSON-encoded here; the attributes are JSON text already.
        rows = (
            "["
            + ",".join(
                f"[{_encode(key)},{_encode(pc_id)},{attributes}]"
                for key, pc_id, attributes in payload
            )
            + "]"
        )
        if create_missing:
            third_party_id = "j.value ->> 0" if kind is KeyKind.THIRD_PARTY_ID else "NULL"
            sql = _INSERT.format(column=kind.column, third_party_value=third_party_id)
            params: list[int | str | None] = [
                client_id,
                stamp,
                stamp,
                rows,
                MAX_PROFILE_ATTRIBUTES_BYTES,
            ]
        else:
            sql = _UPDATE.format(column=kind.column)
            params = [rows, client_id, stamp, MAX_PROFILE_ATTRIBUTES_BYTES]
        # In a transaction (a batch's chunk) the writer lock is held already: the driver's own
        # cursor. A lone statement (the single update) goes through Django's, which takes it.
        if connection.in_atomic_block:
            with reads.execute(sql, params) as cursor:
                return dict(cursor.fetchall())
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return dict(cursor.fetchall())

    def _upsert_each_row(
        self, client_id: int, kind: KeyKind, payload: list[Row], stamp: str | None
    ) -> dict[str, str] | None:
        """Every key mapped to ``""`` when all rows applied; ``None`` (and no change) if not."""
        if kind is KeyKind.THIRD_PARTY_ID:
            sql = _UPSERT_EACH_ROW.format(
                column=kind.column, third_party_value="%s", limit=MAX_PROFILE_ATTRIBUTES_BYTES
            )
            params: list[tuple[int | str | None, ...]] = [
                (client_id, pc_id, key, attributes, stamp, stamp)
                for key, pc_id, attributes in payload
            ]
        else:
            sql = _UPSERT_EACH_ROW.format(
                column=kind.column, third_party_value="NULL", limit=MAX_PROFILE_ATTRIBUTES_BYTES
            )
            params = [(client_id, key, attributes, stamp, stamp) for key, _, attributes in payload]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, params)
            if cursor.rowcount == len(payload):
                return dict.fromkeys((key for key, _, _ in payload), "")
            transaction.set_rollback(True)
        return None

    def existing_keys(self, client_id: int, kind: KeyKind, keys: list[str]) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(_EXISTING.format(column=kind.column), [client_id, json.dumps(keys)])
            return {row[0] for row in cursor.fetchall()}


ENGINE = SQLiteEngine()
