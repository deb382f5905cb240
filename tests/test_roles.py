"""Who may use the Profile API Settings screen: every person, every action (docs/screen.md#who-may-use-it).

Anonymous people are sent to sign in, strangers to the client get 404, members below
Approver get 403, and a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as HttpClient

from profiles.access.actors import SYSTEM
from profiles.models import AuditEvent, Client, ProfileApiSettings, ProfileToken, Role
from tests.conftest import member

PAGE = "/setup/demo/implementation/"


def person(kind: str, demo: Client, other_client: Client) -> User | None:
    if kind == "anonymous":
        return None
    if kind == "non-member":
        return member(other_client, "charlie", Role.APPROVER)
    if kind == "superuser":
        return User.objects.create_superuser("root", password="correct horse battery staple")
    return member(demo, kind, Role[kind.upper()])


# action → (starting state: auth on?, token exists?), request data (None means GET)
ACTIONS: dict[str, tuple[tuple[bool, bool], dict[str, str] | None]] = {
    "view": ((True, True), None),
    "enable": ((False, False), {"require_authentication": "enabled", "save_authentication": "1"}),
    "disable": ((True, False), {"require_authentication": "disabled", "save_authentication": "1"}),
    "generate": ((True, False), {"expires_in_days": "90", "generate": "1"}),
    "re-generate": ((True, True), {"expires_in_days": "90", "regenerate": "confirmed"}),
}
ALLOWED = {"view": 200, "enable": 302, "disable": 302, "generate": 200, "re-generate": 200}
REFUSED = {"non-member": 404, "observer": 403, "editor": 403, "publisher": 403}


def state(client: Client) -> tuple[Any, ...]:
    return (
        ProfileApiSettings.for_client(client).require_authentication,
        sorted(ProfileToken.objects.values_list("pk", "revoked_at")),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize(
    "kind",
    ["anonymous", "non-member", "observer", "editor", "publisher", "approver", "superuser"],
)
def test_it_allows_only_approvers_and_superusers(
    kind: str, action: str, demo: Client, other_client: Client
) -> None:
    (auth_on, with_token), data = ACTIONS[action]
    ProfileApiSettings.for_client(demo).set_require_authentication(auth_on, actor=SYSTEM)
    if with_token:
        ProfileToken.objects.issue(demo, expires_in_days=30, actor=SYSTEM)
    user = person(kind, demo, other_client)
    http = HttpClient()
    if user is not None:
        http.force_login(user)
    before = state(demo)

    response = http.get(PAGE) if data is None else http.post(PAGE, data)

    if kind == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif kind in REFUSED:
        assert response.status_code == REFUSED[kind]
    else:
        assert response.status_code == ALLOWED[action]
    allowed = kind in {"approver", "superuser"}
    if allowed and data is not None:
        assert state(demo) != before
        assert AuditEvent.objects.filter(client=demo, actor=user).count() == 1
    else:
        assert state(demo) == before


def test_it_re_checks_the_role_on_every_post(alice: User, demo: Client) -> None:
    http = HttpClient()
    http.force_login(alice)
    assert http.get(PAGE).status_code == 200
    alice.memberships.update(role=Role.EDITOR)

    response = http.post(PAGE, {"require_authentication": "enabled", "save_authentication": "1"})

    assert response.status_code == 403
    assert ProfileApiSettings.for_client(demo).require_authentication is False


def test_it_uses_the_highest_role_of_a_superuser_without_membership(
    demo: Client, root: User
) -> None:
    http = HttpClient()
    http.force_login(root)

    assert http.get(PAGE).status_code == 200


def test_it_refuses_an_inactive_approver(alice: User, demo: Client) -> None:
    http = HttpClient()
    http.force_login(alice)
    User.objects.filter(pk=alice.pk).update(is_active=False)

    response = http.post(PAGE, {"require_authentication": "enabled", "save_authentication": "1"})

    assert response.status_code == 302
    assert ProfileApiSettings.for_client(demo).require_authentication is False


def test_it_answers_404_for_a_client_that_does_not_exist(alice: User) -> None:
    http = HttpClient()
    http.force_login(alice)

    assert http.get("/setup/nope/implementation/").status_code == 404
