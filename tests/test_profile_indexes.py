"""Every read of profiles by client uses an index, though the profile's client has no index of
its own: the unique (client, key) indexes lead with the client (docs/performance.md#indexes)."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from profiles.models import Client, Profile


def plan(queryset: QuerySet[Profile]) -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # An empty table is read whole when that is cheapest: the question is whether
            # an index can serve the read at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


def uses_an_index(text: str) -> bool:
    if connection.vendor == "postgresql":
        return "Index" in text and "Seq Scan" not in text
    return "USING" in text and "INDEX" in text and "SCAN profiles_profile" not in text


def test_the_profile_table_has_no_index_on_the_client_alone(demo: Client) -> None:
    with connection.cursor() as cursor:
        indexes = connection.introspection.get_constraints(cursor, Profile._meta.db_table)
    client_column = Profile._meta.get_field("client").column
    alone = [
        name
        for name, index in indexes.items()
        if index["index"] and index["columns"] == [client_column]
    ]
    assert alone == []


def test_it_reads_a_clients_profiles_through_an_index(demo: Client) -> None:
    text = plan(Profile.objects.filter(client=demo))
    assert uses_an_index(text), text


def test_it_reads_a_profile_by_either_key_through_an_index(demo: Client) -> None:
    for key in ({"pc_id": "p1"}, {"third_party_id": "t1"}):
        text = plan(Profile.objects.filter(client=demo, **key))
        assert uses_an_index(text), text
