"""The profile authentication token: its format, how it is stored, verified and replaced
(docs/concepts.md#profile-tokens, docs/tokens.md)."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, ProfileToken
from profiles.tokens import secret, verification
from profiles.tokens.models import TokenRejected


def test_it_generates_prefixed_base62_tokens_with_a_valid_checksum() -> None:
    token = secret.generate()

    assert token.startswith("tpa_")
    assert len(token) == secret.TOKEN_LENGTH == 4 + 43 + 6
    assert set(token[4:]) <= set(string.digits + string.ascii_letters)
    assert secret.check_format(token) == token


def test_it_draws_at_least_256_random_bits() -> None:
    assert 62**secret.RANDOM_LENGTH >= 2**256
    assert len({secret.generate() for _ in range(200)}) == 200


def _flip(char: str) -> str:
    return "b" if char == "a" else "a"


@pytest.mark.parametrize(
    ("label", "mangle"),
    [
        ("empty", lambda token: ""),
        ("truncated", lambda token: token[:-1]),
        ("one too long", lambda token: token + "a"),
        ("wrong prefix", lambda token: "tpb_" + token[4:]),
        ("no prefix", lambda token: token[4:] + "abcd"),
        ("typo in the random part", lambda token: token[:10] + _flip(token[10]) + token[11:]),
        ("typo in the checksum", lambda token: token[:-1] + _flip(token[-1])),
        ("character outside base62", lambda token: token[:10] + "-" + token[11:]),
        ("non-ascii character", lambda token: token[:10] + "é" + token[11:]),
        ("surrounding blank", lambda token: " " + token[:-1]),
    ],
)
def test_it_refuses_malformed_tokens(label: str, mangle: Callable[[str], str]) -> None:
    with pytest.raises(secret.MalformedToken):
        secret.check_format(mangle(secret.generate()))


def test_it_keeps_only_a_sha256_digest_and_the_last_four() -> None:
    token = secret.generate()

    assert len(secret.digest(token)) == 64
    assert secret.digest(token) != secret.digest(secret.generate())
    assert secret.last_four(token) == token[-4:]
    assert secret.mask("wxyz") == "tpa_…wxyz"


def issue(client: Client, **kwargs: Any) -> tuple[ProfileToken, str]:
    return ProfileToken.objects.issue(client, expires_in_days=90, actor=SYSTEM, **kwargs)


def test_it_stores_the_digest_and_never_the_plaintext(demo: Client) -> None:
    token, plaintext = issue(demo)

    stored = ProfileToken.objects.filter(pk=token.pk).values().get()
    assert stored["digest"] == secret.digest(plaintext)
    assert stored["last_four"] == plaintext[-4:]
    assert plaintext not in str(stored)


def test_it_verifies_the_active_token(demo: Client) -> None:
    token, plaintext = issue(demo)

    assert verification.verify(demo.pk, plaintext) == token


def test_it_refuses_a_malformed_token_without_a_query(
    demo: Client, django_assert_num_queries: Any
) -> None:
    issue(demo)

    with django_assert_num_queries(0), pytest.raises(TokenRejected) as refused:
        verification.verify(demo.pk, "tpa_not-a-token")
    assert refused.value.reason == "invalid"


def test_it_looks_a_well_formed_token_up_in_one_query(
    demo: Client, django_assert_num_queries: Any
) -> None:
    _, plaintext = issue(demo)

    with django_assert_num_queries(1):
        verification.verify(demo.pk, plaintext)
    with django_assert_num_queries(1), pytest.raises(TokenRejected):
        verification.verify(demo.pk, secret.generate())


def test_it_refuses_another_clients_token(demo: Client, other_client: Client) -> None:
    _, plaintext = issue(other_client)

    with pytest.raises(TokenRejected) as refused:
        verification.verify(demo.pk, plaintext)
    assert refused.value.reason == "invalid"


def test_it_refuses_an_expired_token_saying_so(demo: Client) -> None:
    token, plaintext = issue(demo)
    later = token.expires_at + timedelta(seconds=1)

    with pytest.raises(TokenRejected) as refused:
        verification.verify(demo.pk, plaintext, now=later)
    assert refused.value.reason == "expired"
    assert refused.value.last_four == token.last_four


def test_it_revokes_the_previous_token_in_the_same_transaction(demo: Client) -> None:
    old, old_plaintext = issue(demo)

    new, _ = issue(demo)

    old.refresh_from_db()
    assert old.revoked_at == new.created_at
    assert list(ProfileToken.objects.unrevoked()) == [new]
    with pytest.raises(TokenRejected):
        verification.verify(demo.pk, old_plaintext)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == [AuditEvent.Action.TOKEN_REGENERATED, AuditEvent.Action.TOKEN_GENERATED]


def test_it_keeps_the_old_token_when_the_new_one_cannot_be_stored(
    demo: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _ = issue(demo)
    # A digest collision makes the insert fail after the revocation ran.
    monkeypatch.setattr(secret, "digest", lambda token: old.digest)

    with pytest.raises(IntegrityError):
        issue(demo)

    old.refresh_from_db()
    assert old.revoked_at is None
    assert ProfileToken.objects.count() == 1


def test_the_database_allows_one_unrevoked_token_per_client(
    demo: Client, other_client: Client
) -> None:
    expires = timezone.now() + timedelta(days=1)
    ProfileToken.objects.create(client=demo, digest="a" * 64, last_four="aaaa", expires_at=expires)
    ProfileToken.objects.create(
        client=other_client, digest="b" * 64, last_four="bbbb", expires_at=expires
    )
    ProfileToken.objects.create(
        client=demo, digest="c" * 64, last_four="cccc", expires_at=expires, revoked_at=expires
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        ProfileToken.objects.create(
            client=demo, digest="d" * 64, last_four="dddd", expires_at=expires
        )


def test_the_database_refuses_a_duplicate_digest(demo: Client, other_client: Client) -> None:
    expires = timezone.now() + timedelta(days=1)
    ProfileToken.objects.create(client=demo, digest="a" * 64, last_four="aaaa", expires_at=expires)

    with pytest.raises(IntegrityError), transaction.atomic():
        ProfileToken.objects.create(
            client=other_client, digest="a" * 64, last_four="aaaa", expires_at=expires
        )


def test_it_refuses_an_expiry_outside_the_choices(demo: Client) -> None:
    with pytest.raises(ValueError, match="expires_in_days"):
        ProfileToken.objects.issue(demo, expires_in_days=2, actor=SYSTEM)
    assert not ProfileToken.objects.exists()
