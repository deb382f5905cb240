from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from profiles.models import Client, Profile
from profiles.store import (
    MAX_PROFILE_ATTRIBUTES_BYTES,
    KeyKind,
    Update,
    encoded_size,
    merge,
    reads,
)
from profiles.store.postgresql import COPY_THRESHOLD

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def values(profile: Profile) -> dict[str, str]:
    return {name: entry["value"] for name, entry in profile.attributes.items()}


def test_it_creates_missing_profiles_by_third_party_id_with_a_target_shaped_pc_id(
    demo: Client,
) -> None:
    result = merge(
        demo.pk,
        KeyKind.THIRD_PARTY_ID,
        [Update("u-1", {"tier": "gold"})],
        create_missing=True,
        now=NOW,
    )
    profile = Profile.objects.get(client=demo, third_party_id="u-1")
    assert result.applied == {"u-1": profile.pc_id}
    assert values(profile) == {"tier": "gold"}
    assert profile.attributes["tier"]["modifiedAt"] == NOW.isoformat()
    assert re.fullmatch(r"\d{13}-\d{6}\.\d{2}_\d{2}", profile.pc_id)


def test_it_merges_attributes_and_keeps_the_ones_not_named(demo: Client) -> None:
    merge(
        demo.pk, KeyKind.PC_ID, [Update("p1", {"a": "1", "b": "2"})], create_missing=True, now=NOW
    )
    merge(demo.pk, KeyKind.PC_ID, [Update("p1", {"b": "3"})], create_missing=False, now=LATER)
    profile = Profile.objects.get(client=demo, pc_id="p1")
    assert values(profile) == {"a": "1", "b": "3"}
    assert profile.attributes["a"]["modifiedAt"] == NOW.isoformat()
    assert profile.attributes["b"]["modifiedAt"] == LATER.isoformat()
    assert profile.modified_at == LATER


def test_it_applies_duplicate_keys_in_order_with_the_last_value_winning(demo: Client) -> None:
    updates = [Update("u", {"a": "1", "b": "1"}), Update("u", {"a": "2"}), Update("u", {"c": "3"})]
    merge(demo.pk, KeyKind.THIRD_PARTY_ID, updates, create_missing=True, now=NOW)
    assert values(Profile.objects.get(third_party_id="u")) == {"a": "2", "b": "1", "c": "3"}


def test_it_reports_unknown_profiles_when_not_creating(demo: Client) -> None:
    merge(demo.pk, KeyKind.PC_ID, [Update("known", {"a": "1"})], create_missing=True, now=NOW)
    result = merge(
        demo.pk,
        KeyKind.PC_ID,
        [Update("known", {"a": "2"}), Update("unknown", {"a": "2"})],
        create_missing=False,
        now=LATER,
    )
    assert set(result.applied) == {"known"}
    assert result.not_found == {"unknown"}
    assert not Profile.objects.filter(pc_id="unknown").exists()


def test_it_never_touches_another_clients_profile(demo: Client, other_client: Client) -> None:
    merge(other_client.pk, KeyKind.PC_ID, [Update("p1", {"a": "x"})], create_missing=True, now=NOW)
    result = merge(
        demo.pk, KeyKind.PC_ID, [Update("p1", {"a": "y"})], create_missing=False, now=LATER
    )
    assert result.not_found == {"p1"}
    assert values(Profile.objects.get(client=other_client, pc_id="p1")) == {"a": "x"}


@pytest.mark.parametrize("create_missing", [True, False])
def test_it_refuses_a_merge_that_takes_a_profile_past_64_kb(
    demo: Client, create_missing: bool
) -> None:
    big = {f"attr{i}": "v" * 250 for i in range(250)}
    first = dict(list(big.items())[:150])
    merge(demo.pk, KeyKind.PC_ID, [Update("p1", first)], create_missing=True, now=NOW)
    rest = dict(list(big.items())[150:])
    result = merge(
        demo.pk, KeyKind.PC_ID, [Update("p1", rest)], create_missing=create_missing, now=LATER
    )
    assert result.too_large == {"p1"}
    assert values(Profile.objects.get(pc_id="p1")) == first


def test_it_refuses_a_new_profile_past_64_kb(demo: Client) -> None:
    huge = {f"attr{i}": "v" * 256 for i in range(MAX_PROFILE_ATTRIBUTES_BYTES // 256)}
    result = merge(demo.pk, KeyKind.PC_ID, [Update("p1", huge)], create_missing=True, now=NOW)
    assert result.too_large == {"p1"}
    assert not Profile.objects.exists()


@pytest.mark.parametrize("create_missing", [True, False])
def test_it_measures_the_64_kb_limit_in_bytes_of_compact_json(
    demo: Client, create_missing: bool
) -> None:
    # Multi-byte characters and characters JSON escapes, so every engine must count the
    # same bytes: a merge landing exactly on the limit passes, one byte more does not.
    first = {f"attr{i}": 'é"\\' + "v" * 200 for i in range(242)}
    updates = [Update("exact", first), Update("over", first)]
    merge(demo.pk, KeyKind.PC_ID, updates, create_missing=True, now=NOW)
    stored_first = {
        name: {"value": value, "modifiedAt": NOW.isoformat()} for name, value in first.items()
    }
    room = MAX_PROFILE_ATTRIBUTES_BYTES - encoded_size(
        stored_first | {"pad": {"value": "", "modifiedAt": LATER.isoformat()}}
    )
    result = merge(
        demo.pk,
        KeyKind.PC_ID,
        [Update("exact", {"pad": "x" * room}), Update("over", {"pad": "x" * (room + 1)})],
        create_missing=create_missing,
        now=LATER,
    )
    assert set(result.applied) == {"exact"}
    assert result.too_large == {"over"}
    exact = Profile.objects.get(pc_id="exact")
    assert encoded_size(exact.attributes) == MAX_PROFILE_ATTRIBUTES_BYTES
    assert values(exact) == first | {"pad": "x" * room}
    assert values(Profile.objects.get(pc_id="over")) == first


def test_it_merges_a_chunk_of_thousands_like_a_chunk_of_one(demo: Client) -> None:
    # Past COPY_THRESHOLD rows the PostgreSQL engine copies the chunk into a temporary
    # table first; the outcome must not change.
    keys = [f"u-{i}" for i in range(COPY_THRESHOLD + 50)]
    known, unknown = keys[:-10], keys[-10:]
    merge(
        demo.pk,
        KeyKind.THIRD_PARTY_ID,
        [Update(key, {"a": "1", "b": "1"}) for key in known],
        create_missing=True,
        now=NOW,
    )
    updates = [Update(key, {"b": "2"}) for key in keys] + [Update(keys[0], {"c": "3"})]
    result = merge(demo.pk, KeyKind.THIRD_PARTY_ID, updates, create_missing=False, now=LATER)
    assert set(result.applied) == set(known)
    assert result.not_found == set(unknown)
    stored = {p.third_party_id: values(p) for p in Profile.objects.filter(client=demo)}
    assert stored == {key: {"a": "1", "b": "2"} for key in known} | {
        keys[0]: {"a": "1", "b": "2", "c": "3"}
    }
    assert all(result.applied[p.third_party_id] == p.pc_id for p in Profile.objects.all())


@pytest.mark.parametrize(
    "tricky",
    ['":"', '","', "ends with \\", '"}', 'é"\\', '\\":\\"', '{"value":"x"}', "\u2028", ""],
)
def test_it_stores_names_and_values_full_of_json_punctuation_exactly(
    demo: Client, tricky: str
) -> None:
    attributes = {"a": tricky + "!", f"{tricky}name": "v", "plain": "p"}
    merge(demo.pk, KeyKind.PC_ID, [Update("p", attributes)], create_missing=True, now=NOW)
    stored = Profile.objects.get(pc_id="p").attributes
    assert stored == {
        name: {"value": value, "modifiedAt": NOW.isoformat()} for name, value in attributes.items()
    }


@pytest.mark.parametrize("kind", list(KeyKind))
def test_an_update_finds_its_profiles_by_key_instead_of_walking_the_client(
    demo: Client, kind: KeyKind
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("reads SQLite's query plan")
    keys = [f"u-{i}" for i in range(20)]
    merge(demo.pk, kind, [Update(key, {"a": "1"}) for key in keys], create_missing=True, now=NOW)
    with CaptureQueriesContext(connection) as queries:
        merge(demo.pk, kind, [Update("u-3", {"a": "2"})], create_missing=False, now=LATER)
    (update,) = [
        q["sql"] for q in queries.captured_queries if "UPDATE profiles_profile" in q["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {update}")
        steps = [str(row[-1]) for row in cursor.fetchall()]
    # One unique-index search per key; no step walks the client's profiles.
    assert any(f"(client_id=? AND {kind.column}=?)" in step for step in steps), steps
    assert not any(step.startswith("SCAN p") for step in steps), steps


@pytest.mark.parametrize("create_missing", [True, False])
def test_it_stores_names_and_values_that_look_like_json_separators_exactly(
    demo: Client, create_missing: bool
) -> None:
    tricky = {",": ":", ":": ",", "a": ",", "b": ":", "c": 'x",', "d": 'y":', 'q"': '","', "e": "}"}
    if not create_missing:
        merge(demo.pk, KeyKind.PC_ID, [Update("p1", {"seed": "1"})], create_missing=True, now=NOW)
    result = merge(
        demo.pk, KeyKind.PC_ID, [Update("p1", tricky)], create_missing=create_missing, now=LATER
    )
    assert result.applied.keys() == {"p1"}
    stored = Profile.objects.get(client=demo, pc_id="p1").attributes
    assert {name: stored[name]["value"] for name in tricky} == tricky
    assert {stored[name]["modifiedAt"] for name in tricky} == {LATER.isoformat()}


# The hot paths' plain-SQL reads (profiles/store/reads.py) --------------------------------


def test_a_profile_read_in_plain_sql_is_the_profile_the_orm_reads(demo: Client) -> None:
    merge(
        demo.pk,
        KeyKind.THIRD_PARTY_ID,
        [Update("u-1", {"tier": "gold"})],
        create_missing=True,
        now=NOW,
    )
    from_orm = Profile.objects.get(client=demo, third_party_id="u-1")

    found = reads.profile(demo.pk, KeyKind.THIRD_PARTY_ID, "u-1")

    assert found is not None
    assert found == from_orm
    fields = [field.attname for field in Profile._meta.concrete_fields]
    assert [getattr(found, name) for name in fields] == [getattr(from_orm, name) for name in fields]
    assert found.modified_at.tzinfo is not None
    assert (found._state.adding, found._state.db) == (False, "default")
    assert found.client == demo
    found.attributes = {}
    found.save(update_fields=["attributes"])
    from_orm.refresh_from_db()
    assert from_orm.attributes == {}


def test_the_plain_sql_reads_are_counted_whenever_queries_are_watched(demo: Client) -> None:
    with CaptureQueriesContext(connection) as watched:
        reads.profile(demo.pk, KeyKind.PC_ID, "nobody")
    assert len(watched.captured_queries) == 1
    assert "profiles_profile" in watched.captured_queries[0]["sql"]


def test_a_failing_plain_sql_read_raises_djangos_database_error(db: None) -> None:
    with pytest.raises(DatabaseError):
        reads.fetch_one("SELECT nothing FROM no_such_table WHERE 1 = %s", [1])
