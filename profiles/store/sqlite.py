"""The profile store on SQLite: one ``json_each`` statement per chunk, ``json_patch`` merge."""

from __future__ import annotations

import json
from datetime import datetime

from django.db import connection

from profiles.store import MAX_PROFILE_ATTRIBUTES_BYTES, KeyKind, Row

_INSERT = """
INSERT INTO profiles_profile (client_id, pc_id, third_party_id, attributes, created_at, modified_at)
SELECT %s, j.value ->> 1, {third_party_id}, j.value -> 2, %s, %s
FROM json_each(%s) AS j WHERE true
ON CONFLICT (client_id, {column}) DO UPDATE SET
    attributes = json_patch(profiles_profile.attributes, excluded.attributes),
    modified_at = excluded.modified_at
WHERE length(CAST(json_patch(profiles_profile.attributes, excluded.attributes) AS BLOB)) <= %s
RETURNING {column}, pc_id
"""

_UPDATE = """
UPDATE profiles_profile SET
    attributes = json_patch(profiles_profile.attributes, j.value -> 2),
    modified_at = %s
FROM json_each(%s) AS j
WHERE profiles_profile.client_id = %s AND profiles_profile.{column} = j.value ->> 0
  AND length(CAST(json_patch(profiles_profile.attributes, j.value -> 2) AS BLOB)) <= %s
RETURNING profiles_profile.{column}, profiles_profile.pc_id
"""

_EXISTING = """
SELECT {column} FROM profiles_profile
WHERE client_id = %s AND {column} IN (SELECT value FROM json_each(%s))
"""


class SQLiteEngine:
    def merge(
        self,
        client_id: int,
        kind: KeyKind,
        payload: list[Row],
        *,
        create_missing: bool,
        now: datetime,
    ) -> dict[str, str]:
        if not payload:
            return {}
        rows = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        stamp = connection.ops.adapt_datetimefield_value(now)
        if create_missing:
            third_party_id = "j.value ->> 0" if kind is KeyKind.THIRD_PARTY_ID else "NULL"
            sql = _INSERT.format(column=kind.column, third_party_id=third_party_id)
            params: list[int | str | None] = [
                client_id,
                stamp,
                stamp,
                rows,
                MAX_PROFILE_ATTRIBUTES_BYTES,
            ]
        else:
            sql = _UPDATE.format(column=kind.column)
            params = [stamp, rows, client_id, MAX_PROFILE_ATTRIBUTES_BYTES]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return dict(cursor.fetchall())

    def existing_keys(self, client_id: int, kind: KeyKind, keys: list[str]) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(_EXISTING.format(column=kind.column), [client_id, json.dumps(keys)])
            return {row[0] for row in cursor.fetchall()}


ENGINE = SQLiteEngine()
