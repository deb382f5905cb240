"""Roles from the identity provider's groups (docs/operations.md#roles-from-the-providers-groups).

A group named ``<OIDC_GROUP_PREFIX><client code>:<role>`` (``targetadmin:demo:approver``)
makes its members that role of that client; several groups for one client give the highest.
The group ``<OIDC_GROUP_PREFIX>operator`` makes its members operators: staff and superusers,
for the Django admin.
The groups are read from the claim ``OIDC_GROUPS_CLAIM``, a dotted path into nested claims.
At every sign-in the person's memberships become what their groups say, so a group taken
away at the provider takes the role away at the next sign-in; each change is audited as a
change in the Django admin is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from profiles.access import sign_in_log
from profiles.access.actors import Actor
from profiles.access.models import (
    AuditEvent,
    Client,
    Membership,
    ProviderIdentity,
    Role,
    is_client_code,
)

# Who the audit trail says changed a role that the provider's groups decided.
MAPPING_LABEL = "single sign-on"
_ROLES_BY_NAME = {role.label.lower(): role for role in Role}


class UnknownPerson(Exception):
    """The claims name nobody this application could sign in."""


def groups(claims: Mapping[str, Any]) -> list[str]:
    """The groups in the claim ``OIDC_GROUPS_CLAIM``: a list of strings, or none."""
    value: Any = claims
    for part in settings.OIDC_GROUPS_CLAIM.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return []
    return [group for group in value if isinstance(group, str)]


def roles_from_claims(claims: Mapping[str, Any]) -> dict[str, Role]:
    """Client code → role, the highest each client's groups give; other groups are ignored."""
    prefix = settings.OIDC_GROUP_PREFIX
    roles: dict[str, Role] = {}
    for group in groups(claims):
        if not group.startswith(prefix):
            continue
        code, _, name = group[len(prefix) :].rpartition(":")
        role = _ROLES_BY_NAME.get(name.lower())
        if role is None or not is_client_code(code):
            continue
        roles[code] = max(role, roles.get(code, role))
    return roles


def is_operator(claims: Mapping[str, Any]) -> bool:
    return f"{settings.OIDC_GROUP_PREFIX}operator" in groups(claims)


def apply_operator(user: User, operator: bool, address: str | None) -> None:
    """Give or take away the Django admin (staff and superuser) as the groups say, with an
    audit line: it belongs to no client, so it is not an audit event of one."""
    if user.is_staff == operator and user.is_superuser == operator:
        return
    user.is_staff = user.is_superuser = operator
    user.save(update_fields=["is_staff", "is_superuser"])
    sign_in_log.operator_changed(user.get_username(), operator, address)


def display_name(claims: Mapping[str, Any]) -> str:
    """What the person or script is called: their username at the provider, else their
    e-mail address, else their subject."""
    for claim in ("preferred_username", "email", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value[:150]
    raise UnknownPerson("the token names no subject")


@transaction.atomic
def signed_in_user(issuer: str, claims: Mapping[str, Any]) -> User:
    """The user behind the provider's account, created at their first sign-in with no usable
    password. A local account that already has the name is never taken over."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise UnknownPerson("the ID token names no subject")
    identity = _identity(issuer, subject)
    if identity is not None:
        return identity.user
    username = display_name(claims)
    users = get_user_model()._default_manager
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    try:
        with transaction.atomic():
            user: User = users.create_user(username, email=email)
            ProviderIdentity.objects.create(user=user, issuer=issuer, subject=subject)
    except IntegrityError:
        # The name is taken: by this person, whose first sign-in at the same moment made
        # them first, or by a local account.
        identity = _identity(issuer, subject)
        if identity is None:
            raise UnknownPerson(
                f"an account named {username!r} already exists here and is not linked to "
                "the identity provider; an operator can rename it in the Django admin"
            ) from None
        return identity.user
    return user


def _identity(issuer: str, subject: str) -> ProviderIdentity | None:
    return (
        ProviderIdentity.objects.select_related("user")
        .filter(issuer=issuer, subject=subject)
        .first()
    )


@transaction.atomic
def apply_roles(user: User, roles: Mapping[str, Role], address: str | None) -> None:
    """Make ``user``'s memberships exactly ``roles`` (of clients that exist), auditing each
    role granted, changed or removed."""
    # Two sign-ins of one person at once apply their roles one after the other.
    get_user_model()._default_manager.select_for_update().get(pk=user.pk)
    actor = Actor(None, address, MAPPING_LABEL)
    name = user.get_username()
    current = {
        m.client.code: m for m in Membership.objects.filter(user=user).select_related("client")
    }
    for client in Client.objects.filter(code__in=roles):
        role = roles[client.code]
        membership = current.pop(client.code, None)
        if membership is not None and membership.role == role:
            continue
        if membership is None:
            membership = Membership(user=user, client=client)
        membership.role = role
        membership.save()
        AuditEvent.record(
            client,
            AuditEvent.Action.ROLE_GRANTED,
            actor=actor,
            detail=f"{name} is {role.label} (groups at the identity provider)",
        )
    for membership in current.values():
        membership.delete()
        AuditEvent.record(
            membership.client,
            AuditEvent.Action.ROLE_REMOVED,
            actor=actor,
            detail=f"{name} is no longer a member (groups at the identity provider)",
        )
