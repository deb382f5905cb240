"""docs/operations.md#limits-and-retention: profiles not updated for PROFILE_LIFETIME_DAYS are purged."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test.utils import override_settings
from django.utils import timezone

from profiles.models import Client, Profile
from profiles.store import KeyKind, Update, merge
from profiles.store.retention import expiry_cutoff, purge_expired_profiles


def profile_aged(client: Client, pc_id: str, age: timedelta) -> Profile:
    return Profile.objects.create(client=client, pc_id=pc_id, modified_at=timezone.now() - age)


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_profiles", *args, stdout=out)
    return out.getvalue()


def test_it_purges_profiles_not_updated_for_the_lifetime_and_keeps_the_rest(
    demo: Client, other_client: Client
) -> None:
    day = timedelta(days=1)
    profile_aged(demo, "fresh", timedelta(0))
    profile_aged(demo, "almost", 14 * day - timedelta(minutes=1))
    profile_aged(demo, "expired", 14 * day + timedelta(minutes=1))
    profile_aged(other_client, "ancient", 90 * day)
    output = purge()
    assert set(Profile.objects.values_list("pc_id", flat=True)) == {"fresh", "almost"}
    assert "Purged 2 profiles" in output
    assert "PROFILE_LIFETIME_DAYS=14" in output


@override_settings(PROFILE_LIFETIME_DAYS=90)
def test_it_follows_the_lifetime_setting(demo: Client) -> None:
    profile_aged(demo, "month-old", timedelta(days=30))
    profile_aged(demo, "too-old", timedelta(days=91))
    assert "Purged 1 profiles" in purge()
    assert list(Profile.objects.values_list("pc_id", flat=True)) == ["month-old"]


def test_it_keeps_a_profile_an_update_brought_back_to_life(demo: Client) -> None:
    profile_aged(demo, "revived", timedelta(days=20))
    merge(
        demo.pk,
        KeyKind.PC_ID,
        [Update("revived", {"seen": "1"})],
        create_missing=False,
        now=timezone.now(),
    )
    assert "Purged 0 profiles" in purge()
    assert Profile.objects.filter(pc_id="revived").exists()


def test_it_deletes_in_batches_and_prints_each_one(demo: Client) -> None:
    for i in range(5):
        profile_aged(demo, f"old-{i}", timedelta(days=15))
    output = purge("--batch-size=2", "--verbosity=2")
    assert not Profile.objects.exists()
    assert "batch 1: deleted 2 profiles" in output
    assert "batch 3: deleted 1 profiles" in output
    assert "Purged 5 profiles in 3 batches" in output


def test_it_is_safe_to_run_again_with_nothing_to_do(demo: Client) -> None:
    profile_aged(demo, "old", timedelta(days=15))
    purge()
    assert "Purged 0 profiles in 0 batches" in purge()


def test_it_keeps_a_profile_updated_while_the_purge_runs(demo: Client) -> None:
    profile_aged(demo, "a", timedelta(days=15))
    profile_aged(demo, "b", timedelta(days=15))
    batches = purge_expired_profiles(expiry_cutoff(), batch_size=1)
    assert next(batches) == 1
    survivor = Profile.objects.get()
    merge(
        demo.pk,
        KeyKind.PC_ID,
        [Update(survivor.pc_id, {"x": "1"})],
        create_missing=False,
        now=timezone.now(),
    )
    assert list(batches) == []
    assert Profile.objects.get().pc_id == survivor.pc_id


def test_it_refuses_a_batch_size_below_one(demo: Client) -> None:
    with pytest.raises(SystemExit):
        call_command("purge_profiles", "--batch-size=0", stdout=StringIO(), stderr=StringIO())
