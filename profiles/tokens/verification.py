"""The one path that checks a presented profile token (docs/tokens.md#verification).

A malformed candidate is refused before any query. A well-formed one is looked up by its
SHA-256 digest in one indexed query that also brings its client and the client's "Require
Authentication" setting, and the digests are compared in constant time. The query reads
only the token columns the check needs, never the encrypted copy of a retrievable token
(docs/tokens.md#retrievable-tokens). Nothing is cached per process, so a re-generated
(revoked) token fails on the very next call in every worker.
The profile API gate (``profiles.api.gate``) calls :func:`authenticate`; :func:`verify` is
the same check for one client and one candidate.

A client code that names no client is refused exactly as a client that requires
authentication (docs/api.md#authentication), after the same token look-ups, so neither the
answer nor the queries spent tell a caller without the token which client codes exist.

A client may limit the profile APIs to its allowed networks (docs/api.md#allowed-networks):
the networks come with the client in the same query, and a call from any other address is
refused (:class:`NetworkRefused`) before any presented token is considered, whether or not
the client requires authentication. A code that names no client has no networks and is
refused as before.

A token carries permissions (docs/tokens.md#permissions): the client's own token has all of
them, an integration's token those its integration was given, read in the same query through
a join with the integration. A token that would open the call but lacks the permission the
call needs is refused with :class:`ScopeRefused`, and its use is not recorded.

A token that opens a call has its last use recorded (docs/tokens.md#last-used): not on
every call, but when the stored time, read by the check itself, is a minute old or more.
The write is then one conditional UPDATE that only changes a row whose time is still that
old, so however many workers see the same stale time at once, the row is written once a
minute. A failed write is logged and never fails the call.

Every call that presents a known token of the client it names is counted for that token's
usage (docs/tokens.md#usage) where it is decided, with the permission the call needs:
accepted, or refused as expired, revoked, outside its permissions or from outside the
allowed networks. The count is kept in the process's memory
(``profiles.tokens.tally``) and costs no query; a token that is unknown, or another
client's, has nothing to count against.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from profiles.access.addresses import Network, parse_network, within
from profiles.access.models import Client, is_client_code
from profiles.store import reads
from profiles.tokens import expiry, permissions, secret, tally
from profiles.tokens.integrations import Integration
from profiles.tokens.models import (
    ProfileApiSettings,
    ProfileToken,
    Rejection,
    TokenRejected,
)
from profiles.tokens.usage import Outcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApiClient:
    """A client as the gate needs it: with its "Require Authentication" and allowed networks
    (empty: any address)."""

    client: Client
    require_authentication: bool
    allowed_networks: tuple[Network, ...] = ()

    def allows(self, address: str | None) -> bool:
        """Whether a profile API call from ``address`` may proceed to the token check."""
        return not self.allowed_networks or (
            address is not None and within(address, self.allowed_networks)
        )


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A stored token found by its digest, with the client it belongs to and what it may
    call."""

    token: ProfileToken
    owner: ApiClient
    permissions: int = permissions.ALL


class Refused(Exception):
    """No presented token opens the client named ``code``.

    Either the client requires authentication, or there is no such client (``client`` is
    ``None``); the two are refused alike. ``reasons`` has one entry per presented token; it is
    empty when none was presented. ``revoked`` tells that one of them is a token of the
    client's that was revoked or replaced (its grace period over): refused as invalid all the
    same, and counted apart (docs/operations.md#metrics).
    """

    def __init__(
        self,
        code: str,
        client: Client | None,
        reasons: list[TokenRejected],
        *,
        revoked: bool = False,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.client = client
        self.reasons = reasons
        self.revoked = revoked


class ScopeRefused(Exception):
    """``token`` would open ``client``'s profile APIs, but lacks the permission ``needs``."""

    def __init__(self, client: Client, token: ProfileToken, needs: permissions.Permission) -> None:
        super().__init__(client.code)
        self.client = client
        self.token = token
        self.needs = needs


class NetworkRefused(Exception):
    """``client`` accepts profile API calls only from its allowed networks, and this call
    comes from elsewhere."""

    def __init__(self, client: Client) -> None:
        super().__init__(client.code)
        self.client = client


_SETTINGS_JOIN = (
    f"LEFT JOIN {reads.table(ProfileApiSettings)} s "
    f"ON s.{reads.column(ProfileApiSettings, 'client')} = c.{reads.column(Client, 'id')}"
)
_REQUIRE = (
    f"s.{reads.column(ProfileApiSettings, 'require_authentication')}, "
    f"s.{reads.column(ProfileApiSettings, 'allowed_networks')}"
)
_SETTINGS_WIDTH = 2

_CLIENT = f"""
SELECT {reads.columns(Client, "c")}, {_REQUIRE}
FROM {reads.table(Client)} c {_SETTINGS_JOIN}
WHERE c.{reads.column(Client, "code")} = %s
"""  # noqa: S608

# The token's columns the check (``ProfileToken.check_usable_by``) and ``record_use`` read;
# the others, its encrypted copy above all (docs/tokens.md#retrievable-tokens), are never
# selected here and stay deferred on the instance.
GATE_FIELDS = (
    "id",
    "client",
    "integration",
    "digest",
    "last_four",
    "expires_at",
    "revoked_at",
    "grace_until",
    "last_used_at",
)

# The integration's permissions follow the token's columns: NULL for the client's own token.
_TOKEN = f"""
SELECT {reads.columns(ProfileToken, "t", GATE_FIELDS)}, i.{reads.column(Integration, "permissions")},
{reads.columns(Client, "c")}, {_REQUIRE}
FROM {reads.table(ProfileToken)} t
JOIN {reads.table(Client)} c ON c.{reads.column(Client, "id")} = t.{reads.column(ProfileToken, "client")}
LEFT JOIN {reads.table(Integration)} i
ON i.{reads.column(Integration, "id")} = t.{reads.column(ProfileToken, "integration")}
{_SETTINGS_JOIN}
WHERE t.{reads.column(ProfileToken, "digest")} = %s
"""  # noqa: S608


def client(code: str) -> ApiClient | None:
    """The client named ``code`` and its setting, in one query; ``None`` when unknown.

    A code no client can have (``is_client_code``) is not looked up: PostgreSQL cannot even
    compare one holding NUL, and its answer is known.
    """
    if not is_client_code(code):
        return None
    row = reads.fetch_one(_CLIENT, [code])
    if row is None:
        return None
    return _api_client(reads.instance(Client, row[:-_SETTINGS_WIDTH]), row[-_SETTINGS_WIDTH:])


def _api_client(found: Client, settings: tuple[object, ...]) -> ApiClient:
    require, networks = settings
    return ApiClient(found, bool(require), _networks(networks))


def _networks(stored: object) -> tuple[Network, ...]:
    if not stored:
        return ()
    # The JSON column arrives as text (both backends); a decoded list is taken as it is.
    text = stored if isinstance(stored, str) else json.dumps(stored)
    return _parsed_networks(text)


@functools.lru_cache(maxsize=1024)
def _parsed_networks(text: str) -> tuple[Network, ...]:
    """The stored JSON list of networks, parsed once per process and distinct value."""
    entries = json.loads(text)
    # As saved today, whenever an entry was saved (an IPv4-mapped one was kept as IPv6 once).
    return tuple(parse_network(entry) for entry in entries)


def stored_token(candidate: str) -> StoredToken | None:
    """The stored token ``candidate`` is, with its client, setting and permissions, in one
    indexed query.

    The token holds the columns of :data:`GATE_FIELDS`; the others are deferred.
    ``None`` for a malformed candidate (no query at all) or an unknown one.
    """
    try:
        secret.check_format(candidate)
    except secret.MalformedToken:
        return None
    presented = secret.digest(candidate)
    row = reads.fetch_one(_TOKEN, [presented])
    if row is None:
        return None
    width = reads.width(ProfileToken, GATE_FIELDS)
    found = reads.instance(ProfileToken, row[:width], GATE_FIELDS)
    if not hmac.compare_digest(found.digest, presented):
        return None
    granted = row[width]
    owner = reads.instance(Client, row[width + 1 : -_SETTINGS_WIDTH])
    found.client = owner
    return StoredToken(
        found,
        _api_client(owner, row[-_SETTINGS_WIDTH:]),
        permissions.ALL if granted is None else int(granted),
    )


def hint(candidate: str) -> str:
    """The last four characters of a well-formed token, for logs; nothing of anything else."""
    return secret.last_four(candidate) if secret.is_well_formed(candidate) else ""


def _usable(
    client_id: int | None, candidate: str, found: StoredToken | None, now: datetime | None
) -> ProfileToken:
    if found is None:
        raise TokenRejected(Rejection.INVALID, hint(candidate))
    found.token.check_usable_by(client_id, now)
    return found.token


def verify(client_id: int, candidate: str, now: datetime | None = None) -> ProfileToken:
    """The client's active token ``candidate`` is, or ``TokenRejected`` saying why not."""
    return _usable(client_id, candidate, stored_token(candidate), now)


def record_use(token: ProfileToken, address: str | None, now: datetime) -> bool:
    """Note that ``token`` opened a call from ``address`` at ``now``, unless its stored last
    use (as read with it) is under a minute old. Returns whether a row was written."""
    stale = now - expiry.LAST_USED_RESOLUTION
    if token.last_used_at is not None and token.last_used_at > stale:
        return False
    try:
        written = (
            ProfileToken.objects.filter(pk=token.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale))
            .update(last_used_at=now, last_used_from=_ip_address(address))
        )
    except DatabaseError:
        # The call is authenticated; a busy or full database must not fail it for this.
        logger.warning("could not record the use of token …%s", token.last_four, exc_info=True)
        return False
    return bool(written)


def _ip_address(address: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(address or ""))
    except ValueError:
        return None


def authenticate(
    code: str,
    candidates: list[str],
    now: datetime | None = None,
    *,
    address: str | None = None,
    needs: permissions.Permission = permissions.ALL,
) -> Client:
    """The client named ``code`` once ``candidates`` satisfy its setting for a call that
    ``needs`` a permission.

    With "Require Authentication" off every call passes and tokens are ignored; with it on,
    one of ``candidates`` must be the client's active token, or its previous token during
    that one's grace period; the token's use from ``address`` is then recorded
    (:func:`record_use`). Before either, a client with allowed networks refuses a call from
    any other ``address`` with :class:`NetworkRefused`. When the only tokens that would open
    the call lack ``needs``, raises :class:`ScopeRefused`. Raises :class:`Refused`
    otherwise, and for a code that names no client, with the reasons a client requiring
    authentication would give for the same candidates: every token, another client's
    included, is invalid for a client that does not exist.
    """
    stored = [stored_token(candidate) for candidate in candidates]
    caller = next((s.owner for s in stored if s is not None and s.owner.client.code == code), None)
    if caller is None:
        caller = client(code)
    now = now or timezone.now()
    if caller is not None and not caller.allows(address):
        mine = next(
            (s.token for s in stored if s is not None and s.token.client_id == caller.client.pk),
            None,
        )
        if mine is not None:
            tally.COUNTS.count(mine, Outcome.NETWORK, needs, now)
        raise NetworkRefused(caller.client)
    if caller is not None and not caller.require_authentication:
        return caller.client
    client_id = caller.client.pk if caller is not None else None
    reasons: list[TokenRejected] = []
    refused: tuple[ProfileToken, Outcome] | None = None
    lacking: ProfileToken | None = None
    for candidate, found in zip(candidates, stored, strict=True):
        try:
            token = _usable(client_id, candidate, found, now)
        except TokenRejected as rejected:
            reasons.append(rejected)
            if refused is None and found is not None and found.token.client_id == client_id:
                expired = rejected.reason is Rejection.EXPIRED
                refused = (found.token, Outcome.EXPIRED if expired else Outcome.REVOKED)
        else:
            if caller is None or found is None:  # no token opens a client that does not exist
                continue
            if not permissions.allows(found.permissions, needs):
                lacking = lacking or token
                continue
            record_use(token, address, now)
            tally.COUNTS.count(token, Outcome.ACCEPTED, needs, now)
            return caller.client
    if caller is not None and lacking is not None:
        tally.COUNTS.count(lacking, Outcome.SCOPE, needs, now)
        raise ScopeRefused(caller.client, lacking, needs)
    if refused is not None:
        tally.COUNTS.count(*refused, needs, now)
    revoked = refused is not None and refused[1] is Outcome.REVOKED
    raise Refused(code, caller.client if caller is not None else None, reasons, revoked=revoked)
