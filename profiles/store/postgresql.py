"""The profile store on PostgreSQL: one statement per chunk, ``jsonb ||`` merge.

Rows arrive as three parallel arrays (key, pcId for a new profile, stored attributes)
unnested into one ``INSERT … ON CONFLICT DO UPDATE`` or ``UPDATE … FROM``. Big chunks are
copied into a temporary table first (``COPY`` parses far less than a bound array) and
merged from there in the same single statement.

Profiles are locked in key order, so two chunks touching the same profiles in parallel
queue behind each other instead of deadlocking; each statement re-reads the row it waited
for, so no attribute written by the other is lost.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from profiles.rules.limits import MAX_PROFILE_ATTRIBUTES_BYTES
from profiles.store import KeyKind, Row, reads
from profiles.store.reads import profile_sql

# Chunks at least this long go through COPY and a temporary table (faster from about
# 200 rows on; below that the bound arrays win), and so do shorter chunks of wide rows:
# psycopg quotes each element of a bound array with a regular expression, which costs
# seconds for a few megabytes of attributes that COPY sends as they are.
COPY_THRESHOLD = 200
COPY_THRESHOLD_CHARACTERS = 64 * 1024

# The 64 KB limit is the size of the attributes as compact JSON, as ``encoded_size``
# measures it in Python and SQLite's minified ``json_patch`` text measures it there.
# jsonb's text form puts a space after every ':' and ',' it writes; for the stored shape
# {name: {"value": …, "modifiedAt": …}} that is 5 spaces per attribute but one, which are
# taken off. The cheap text length is an upper bound and spares the count for small rows.
_SIZE_WITHIN_LIMIT = """(
    octet_length(({merged})::text) <= %(limit)s
    OR octet_length(({merged})::text)
       - greatest(5 * (SELECT count(*) FROM jsonb_object_keys({merged})) - 1, 0) <= %(limit)s
)"""

_ARRAY_ROWS = (
    "SELECT * FROM unnest(%(keys)s::text[], %(pc_ids)s::text[], %(attributes)s::jsonb[])"
    " AS r(key, pc_id, attributes)"
)
_TABLE_ROWS = "SELECT key, pc_id, attributes FROM profile_merge_rows"

_INSERT = profile_sql(
    """
INSERT INTO {profile} AS p
    ({client}, {pc_id}, {third_party_id}, {attributes}, {created_at}, {modified_at})
SELECT %(client_id)s, r.pc_id, {third_party_value}, r.attributes, %(now)s, %(now)s
FROM ({rows}) AS r ORDER BY r.key
ON CONFLICT ({client}, {column}) DO UPDATE SET
    {attributes} = p.{attributes} || excluded.{attributes},
    {modified_at} = excluded.{modified_at}
WHERE {within_limit}
RETURNING p.{column}, p.{pc_id}
"""
)

_UPDATE = profile_sql(
    """
WITH target AS (
    SELECT p.{id} AS id, r.attributes FROM {profile} AS p
    JOIN ({rows}) AS r ON p.{column} = r.key
    WHERE p.{client} = %(client_id)s
    ORDER BY r.key
    FOR UPDATE OF p
)
UPDATE {profile} AS p SET
    {attributes} = p.{attributes} || target.attributes,
    {modified_at} = %(now)s
FROM target
WHERE p.{id} = target.id AND {within_limit}
RETURNING p.{column}, p.{pc_id}
"""
)

_EXISTING = profile_sql(
    """
SELECT {column} FROM {profile}
WHERE {client} = %s AND {column} = ANY(%s::text[])
"""
)

_CREATE_ROWS_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS profile_merge_rows
    (key text NOT NULL, pc_id text NOT NULL, attributes jsonb NOT NULL)
"""


class PostgreSQLEngine:
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
        params: dict[str, int | datetime | list[str]] = {
            "client_id": client_id,
            "now": now,
            "limit": MAX_PROFILE_ATTRIBUTES_BYTES,
        }
        if create_missing:
            template, merged = _INSERT, "p.attributes || excluded.attributes"
        else:
            template, merged = _UPDATE, "p.attributes || target.attributes"
        third_party_id = "r.key" if kind is KeyKind.THIRD_PARTY_ID else "NULL"

        def statement(rows: str) -> str:
            return template.format(
                rows=rows,
                column=kind.column,
                third_party_value=third_party_id,
                within_limit=_SIZE_WITHIN_LIMIT.format(merged=merged),
            )

        if len(payload) < COPY_THRESHOLD and (
            sum(len(attributes) for _, _, attributes in payload) < COPY_THRESHOLD_CHARACTERS
        ):
            params["keys"] = [key for key, _, _ in payload]
            params["pc_ids"] = [pc_id for _, pc_id, _ in payload]
            params["attributes"] = [attributes for _, _, attributes in payload]
            with reads.execute(statement(_ARRAY_ROWS), params) as cursor:
                return dict(cursor.fetchall())
        # The temporary table lives as long as the connection; each chunk empties it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CREATE_ROWS_TABLE)
            with cursor.cursor.copy(
                "COPY profile_merge_rows (key, pc_id, attributes) FROM STDIN"
            ) as copy:
                for row in payload:
                    copy.write_row(row)
            cursor.execute(statement(_TABLE_ROWS), params)
            applied = dict(cursor.fetchall())
            cursor.execute("TRUNCATE profile_merge_rows")
            return applied

    def existing_keys(self, client_id: int, kind: KeyKind, keys: list[str]) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(_EXISTING.format(column=kind.column), [client_id, keys])
            return {row[0] for row in cursor.fetchall()}


ENGINE = PostgreSQLEngine()
