"""Profile API settings and profile tokens: the stored half of docs/tokens.md."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from profiles.access.addresses import Network, parse_address
from profiles.access.models import AuditEvent, Client
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens import expiry, permissions, sealing, secret
from profiles.tokens.integrations import MAX_PER_CLIENT, Integration, clean_name, name_taken

if TYPE_CHECKING:
    from profiles.access.actors import Actor

MAX_ALLOWED_NETWORKS = 100
KEYS_MISSING_REFUSAL = (
    f"This client allows its token to be retrieved again, but {sealing.NO_KEY}, so no token "
    "can be generated: configure the key, or turn the option off first."
)
_MAX_NETWORK_TEXT = 64
_MAPPED_PREFIX = 96  # ::ffff:0:0/96 holds the IPv4-mapped addresses


def allowlist_network(text: str) -> Network:
    """``text`` as an allowed network. An IPv4-mapped IPv6 network (``::ffff:192.0.2.0/120``)
    is the IPv4 network it maps (``192.0.2.0/24``): a caller's address is read that way
    (:func:`~profiles.access.addresses.parse_address`), so it would never be in the IPv6 one.

    Raises ``ValueError`` for text that is no network.
    """
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= _MAPPED_PREFIX:
        mapped = parse_address(str(network.network_address))
        if isinstance(mapped, ipaddress.IPv4Address):
            return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED_PREFIX))
    return network


def clean_networks(entries: Iterable[object]) -> list[str]:
    """``entries`` as an allowlist: each an IPv4/IPv6 network in CIDR notation (a bare
    address is a network of one), normalised (host bits cleared), duplicates dropped, in the
    order given, at most :data:`MAX_ALLOWED_NETWORKS` (docs/api.md#allowed-networks); an
    IPv4-mapped IPv6 entry is saved as IPv4 (:func:`allowlist_network`).

    Raises ``ValidationError`` naming the first bad entry.
    """
    cleaned: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise ValidationError("each entry must be a network in CIDR notation, as a string.")
        text = entry.strip()
        try:
            if len(text) > _MAX_NETWORK_TEXT:
                raise ValueError(text)
            network = str(allowlist_network(text))
        except ValueError:
            shown = ascii(text[:_MAX_NETWORK_TEXT]) + ("…" if len(text) > _MAX_NETWORK_TEXT else "")
            raise ValidationError(
                f"{shown} is not a network in CIDR notation (e.g. 192.0.2.0/24 or 2001:db8::/32)."
            ) from None
        if network not in cleaned:
            cleaned.append(network)
        if len(cleaned) > MAX_ALLOWED_NETWORKS:
            raise ValidationError(f"at most {MAX_ALLOWED_NETWORKS} networks are allowed.")
    return cleaned


def clean_token_retrievable(enabled: bool) -> bool:
    """``enabled``, unless it is turned on without a key to keep the copies with
    (docs/tokens.md#retrievable-tokens): then ``ValidationError``."""
    if enabled and not sealing.is_configured():
        raise ValidationError(sealing.MISSING_KEYS)
    return enabled


class ProfileApiSettings(models.Model):
    client = models.OneToOneField(
        Client, on_delete=models.CASCADE, primary_key=True, related_name="profile_api_settings"
    )
    require_authentication = models.BooleanField(default=False)
    # Networks (CIDR) the profile APIs accept calls from; empty: any address
    # (docs/api.md#allowed-networks). Read by profiles.tokens.verification with the client.
    allowed_networks = models.JSONField(default=list, blank=True)
    # Each new token is also kept encrypted, so it can be shown again and answered by
    # GET …/authentication/token (docs/tokens.md#retrievable-tokens). Off by default.
    token_retrievable = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Profile API settings"
        verbose_name_plural = "Profile API settings"

    def __str__(self) -> str:
        state = "on" if self.require_authentication else "off"
        return f"{self.client}: authentication {state}"

    @classmethod
    def for_client(cls, client: Client) -> ProfileApiSettings:
        found, _ = cls.objects.get_or_create(client=client)
        return found

    def set_require_authentication(self, enabled: bool, *, actor: Actor) -> bool:
        """Turn authentication on or off; audited. Returns whether anything changed."""
        if self.require_authentication == enabled:
            return False
        with transaction.atomic():
            self.require_authentication = enabled
            self._save_change(
                AuditEvent.Action.AUTH_ENABLED if enabled else AuditEvent.Action.AUTH_DISABLED,
                actor=actor,
            )
        return True

    def set_allowed_networks(self, networks: Iterable[object], *, actor: Actor) -> bool:
        """Replace the allowed networks with ``networks`` (validated by :func:`clean_networks`,
        which raises ``ValidationError``); audited. Returns whether anything changed."""
        cleaned = clean_networks(networks)
        if cleaned == list(self.allowed_networks or []):
            return False
        detail = ", ".join(cleaned) or "any address"
        if len(detail) > 255:
            detail = detail[:254] + "…"
        with transaction.atomic():
            self.allowed_networks = cleaned
            self._save_change(
                AuditEvent.Action.ALLOWED_NETWORKS_CHANGED,
                actor=actor,
                detail=detail,
            )
        return True

    def set_token_retrievable(self, enabled: bool, *, actor: Actor) -> bool:
        """Allow the client's tokens to be retrieved again, or stop it; audited. Turning it
        off erases every stored copy of the client's tokens in the same transaction.
        Returns whether anything changed; ``ValidationError`` from
        :func:`clean_token_retrievable` when it cannot be turned on."""
        if self.token_retrievable == enabled:
            return False
        clean_token_retrievable(enabled)
        with transaction.atomic():
            # Issuing a token reads the setting under the same lock, so no copy is kept
            # after the option went off.
            Client.objects.select_for_update().filter(pk=self.client_id).exists()
            erased = 0
            if not enabled:
                erased = ProfileToken.objects.filter(
                    client_id=self.client_id, ciphertext__isnull=False
                ).update(ciphertext=None)
            self.token_retrievable = enabled
            self._save_change(
                AuditEvent.Action.TOKEN_RETRIEVAL_ENABLED
                if enabled
                else AuditEvent.Action.TOKEN_RETRIEVAL_DISABLED,
                actor=actor,
                detail="" if enabled else f"stored copies erased: {erased}",
            )
        return True

    def _save_change(
        self,
        action: AuditEvent.Action,
        *,
        actor: Actor,
        detail: str = "",
    ) -> None:
        """Save the setting just changed, with who changed it and when, and audit ``action``,
        in the caller's transaction."""
        self.changed_by = actor.user
        self.changed_at = timezone.now()
        self.save()
        AuditEvent.record(
            self.client,
            action,
            actor=actor,
            detail=detail,
        )


class Rejection(StrEnum):
    """Why a presented token cannot be used: "expired" tells its owner to re-generate."""

    INVALID = "invalid"
    EXPIRED = "expired"


class TokenRejected(Exception):
    """A presented token cannot be used, for ``reason``."""

    def __init__(self, reason: Rejection, last_four: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.last_four = last_four


class ProfileTokenQuerySet(models.QuerySet["ProfileToken"]):
    """A client has at most one *current* token (active or expired) and at most one
    *previous* token in its grace period (docs/tokens.md#rotation-with-a-grace-period); so
    has each of its integrations (docs/tokens.md#integration-tokens)."""

    def of_client(self, client: Client) -> ProfileTokenQuerySet:
        """The client's own tokens, not its integrations'."""
        return self.filter(client=client, integration__isnull=True)

    def unrevoked(self) -> ProfileTokenQuerySet:
        return self.filter(revoked_at__isnull=True)

    def current(self) -> ProfileTokenQuerySet:
        """The client's token, active or expired; never one kept for a grace period."""
        return self.unrevoked().filter(grace_until__isnull=True)

    def active(self, now: datetime | None = None) -> ProfileTokenQuerySet:
        return self.current().filter(expires_at__gt=now or timezone.now())

    def in_grace(self, now: datetime | None = None) -> ProfileTokenQuerySet:
        """A replaced token that still works: its grace period and its lifetime both last."""
        now = now or timezone.now()
        return self.unrevoked().filter(grace_until__gt=now, expires_at__gt=now)

    def issue(
        self,
        client: Client,
        *,
        expires_in_days: int,
        actor: Actor,
        now: datetime | None = None,
        previous_token_grace_seconds: int = 0,
        integration: Integration | None = None,
    ) -> tuple[ProfileToken, str]:
        """Create the client's new token, or ``integration``'s, replacing the current one in
        the same transaction.

        The current token stops working at once (Adobe's behaviour), or, with
        ``previous_token_grace_seconds``, keeps working that long as the *previous* token;
        a previous token still in its grace period then ends at once. Returns the stored
        token and its plaintext; the plaintext exists only in the return value.

        A client that allows its token to be retrieved again needs a key to keep the copy
        with: without one, ``ProductError`` (``token_encryption_key_missing``) and nothing
        is issued, replaced or audited (docs/tokens.md#retrievable-tokens). An
        integration's token is never kept: it is shown once; a revoked integration gets
        none (``token_not_found``).
        """
        if expires_in_days not in expiry.choices():
            raise ValueError(f"expires_in_days must be one of {expiry.choices_text()}")
        if not 0 <= previous_token_grace_seconds <= expiry.MAX_GRACE_SECONDS:
            raise ValueError(
                f"previous_token_grace_seconds must be between 0 and {expiry.MAX_GRACE_SECONDS}"
            )
        now = now or timezone.now()
        plaintext = secret.generate()
        with transaction.atomic():
            # Re-generations of one client queue here (PostgreSQL; SQLite's write lock
            # serialises them anyway), so each sees the one before it complete.
            Client.objects.select_for_update().filter(pk=client.pk).exists()
            if integration is not None and integration.is_revoked_now():
                raise integration.not_found()
            retrievable = (
                integration is None
                and ProfileApiSettings.objects.filter(
                    client=client, token_retrievable=True
                ).exists()
            )
            if retrievable and not sealing.is_configured():
                # Nothing half-done: no token without its copy while the option is on.
                raise ProductError(ErrorCode.TOKEN_ENCRYPTION_KEY_MISSING, KEYS_MISSING_REFUSAL)
            mine = self.filter(client=client, integration=integration)
            older = [
                ended
                for ended in mine.unrevoked().filter(grace_until__isnull=False)
                if self._end_grace(
                    ended,
                    now,
                    ended_by="a re-generation",
                    actor=actor,
                )
            ]
            replaced = mine.current().first()
            keeps_working = (
                replaced is not None
                and previous_token_grace_seconds > 0
                and not replaced.is_expired(now)
            )
            if replaced is not None:
                # Only the current token is ever retrieved: a replaced one's copy goes.
                replaced.ciphertext = None
                if keeps_working:
                    replaced.grace_until = now + timedelta(seconds=previous_token_grace_seconds)
                    replaced.save(update_fields=["grace_until", "ciphertext"])
                else:
                    replaced.revoked_at = now
                    replaced.save(update_fields=["revoked_at", "ciphertext"])
            token = self.create(
                client=client,
                integration=integration,
                digest=secret.digest(plaintext),
                last_four=secret.last_four(plaintext),
                created_by=actor.user,
                created_at=now,
                expires_at=now + timedelta(days=expires_in_days),
                ciphertext=sealing.seal(plaintext) if retrievable else None,
            )
            AuditEvent.record(
                client,
                _issued_action(integration, regenerated=replaced is not None or bool(older)),
                actor=actor,
                token_last_four=token.last_four,
                detail=_named(integration, f"expires in {expires_in_days} days"),
            )
            if keeps_working and replaced is not None:
                AuditEvent.record(
                    client,
                    AuditEvent.Action.GRACE_STARTED,
                    actor=actor,
                    token_last_four=replaced.last_four,
                    detail=_named(
                        integration,
                        f"works until {replaced.valid_until.isoformat(timespec='seconds')}",
                    ),
                )
        return token, plaintext

    def add_integration(
        self,
        client: Client,
        *,
        name: str,
        granted: int,
        expires_in_days: int,
        actor: Actor,
        now: datetime | None = None,
    ) -> tuple[Integration, ProfileToken, str]:
        """A new integration of ``client`` with its first token, audited: the integration,
        the stored token and its plaintext, which exists only in the return value
        (docs/tokens.md#integration-tokens).

        ``ProductError``: ``token_limit`` when the client has :data:`MAX_PER_CLIENT`
        already, ``invalid`` when one of them has the name.
        """
        name = clean_name(name)
        granted = permissions.parse(permissions.names(granted))
        now = now or timezone.now()
        try:
            with transaction.atomic():
                # Additions to one client queue here, so the limit holds under concurrency.
                Client.objects.select_for_update().filter(pk=client.pk).exists()
                live = Integration.objects.filter(client=client).unrevoked()
                if live.count() >= MAX_PER_CLIENT:
                    raise ProductError(
                        ErrorCode.TOKEN_LIMIT,
                        f"Client {client.code!r} already has {MAX_PER_CLIENT} integration "
                        "tokens: revoke one first.",
                    )
                if live.filter(name=name).exists():
                    raise name_taken(client, name)
                integration = Integration.objects.create(
                    client=client,
                    name=name,
                    permissions=int(granted),
                    created_by=actor.user,
                    created_at=now,
                )
                token, plaintext = self.issue(
                    client,
                    integration=integration,
                    expires_in_days=expires_in_days,
                    actor=actor,
                    now=now,
                )
        except IntegrityError:
            raise name_taken(client, name) from None
        return integration, token, plaintext

    def revoke_integration(
        self, integration: Integration, *, actor: Actor, now: datetime | None = None
    ) -> bool:
        """Revoke ``integration`` and every token it still has, at once, audited; the
        client's own token and its other integrations keep working. ``False`` when it was
        revoked already."""
        now = now or timezone.now()
        with transaction.atomic():
            if not Integration.objects.filter(pk=integration.pk).unrevoked().update(revoked_at=now):
                return False
            integration.revoked_at = now
            tokens = self.filter(integration=integration)
            current = tokens.current().first()
            tokens.unrevoked().update(revoked_at=now)
            AuditEvent.record(
                integration.client,
                AuditEvent.Action.INTEGRATION_REVOKED,
                actor=actor,
                token_last_four=current.last_four if current is not None else "",
                detail=repr(integration.name),
            )
        return True

    def _end_grace(
        self, token: ProfileToken, now: datetime, *, ended_by: str, actor: Actor
    ) -> bool:
        """Mark a previous token revoked when its grace period ended (now, if it was still
        running), audited once; ``False`` when someone else ended it first."""
        over = token.valid_until
        ended_at = min(over, now)
        if not self.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=ended_at):
            return False
        AuditEvent.record(
            token.client,
            AuditEvent.Action.GRACE_ENDED,
            actor=actor,
            token_last_four=token.last_four,
            detail="grace period over" if over <= now else f"ended early by {ended_by}",
        )
        return True

    def end_finished_graces(self, now: datetime | None = None, *, actor: Actor) -> int:
        """Record every grace period that has run out as ended by ``actor`` (the reminder
        sweep does, as ``SYSTEM``); returns how many. The tokens stopped working when it ran
        out."""
        now = now or timezone.now()
        finished = (
            self.unrevoked()
            .filter(grace_until__isnull=False)
            .filter(Q(grace_until__lte=now) | Q(expires_at__lte=now))
            .select_related("client")
        )
        return sum(self._end_grace(token, now, ended_by="time", actor=actor) for token in finished)

    def revoke_active(self, client: Client, *, actor: Actor) -> ProfileToken | None:
        """Revoke the client's current token (a previous one in grace is left alone)."""
        with transaction.atomic():
            token = self.of_client(client).current().select_for_update().first()
            if token is None:
                return None
            token.revoked_at = timezone.now()
            token.ciphertext = None
            token.save(update_fields=["revoked_at", "ciphertext"])
            AuditEvent.record(
                client,
                AuditEvent.Action.TOKEN_REVOKED,
                actor=actor,
                token_last_four=token.last_four,
            )
        return token

    def revoke_previous(
        self,
        client: Client,
        *,
        actor: Actor,
        token_id: int | None = None,
        now: datetime | None = None,
    ) -> ProfileToken | None:
        """End the grace period of the client's previous token now ("Revoke now"), audited.

        ``None`` when no previous token still works, or (``token_id``) when the one still
        working is not the one the caller saw.
        """
        now = now or timezone.now()
        with transaction.atomic():
            token = self.of_client(client).in_grace(now).select_for_update().first()
            if token is None or (token_id is not None and token.pk != token_id):
                return None
            if not self.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
                return None  # pragma: no cover - the row lock above keeps it ours
            token.revoked_at = now
            AuditEvent.record(
                client,
                AuditEvent.Action.PREVIOUS_TOKEN_REVOKED,
                actor=actor,
                token_last_four=token.last_four,
            )
        return token


def _issued_action(integration: Integration | None, *, regenerated: bool) -> AuditEvent.Action:
    if integration is None:
        if regenerated:
            return AuditEvent.Action.TOKEN_REGENERATED
        return AuditEvent.Action.TOKEN_GENERATED
    if regenerated:
        return AuditEvent.Action.INTEGRATION_REGENERATED
    return AuditEvent.Action.INTEGRATION_ADDED


def _named(integration: Integration | None, detail: str) -> str:
    """An audit detail, prefixed with the integration's name when it is about one."""
    return detail if integration is None else f"{integration.name!r}: {detail}"


class ProfileToken(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="tokens")
    # NULL: the client's own token (all permissions); else one of an integration's tokens
    # (docs/tokens.md#integration-tokens).
    integration = models.ForeignKey(
        "profiles.Integration",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tokens",
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    last_four = models.CharField(max_length=4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the token was replaced with a grace period: it works until then.",
    )
    # Written at most once a minute per token, after a call it opened (docs/tokens.md#last-used).
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)
    # The token encrypted (profiles.tokens.sealing), kept only while its client allows
    # retrieval and only for its current token (docs/tokens.md#retrievable-tokens); NULL:
    # no copy kept, which "" would not say as plainly.
    ciphertext = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001

    objects: ClassVar[ProfileTokenQuerySet] = ProfileTokenQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("client",),
                condition=Q(
                    integration__isnull=True, revoked_at__isnull=True, grace_until__isnull=True
                ),
                name="one_current_token_per_client",
            ),
            models.UniqueConstraint(
                fields=("client",),
                condition=Q(
                    integration__isnull=True, revoked_at__isnull=True, grace_until__isnull=False
                ),
                name="one_previous_token_in_grace_per_client",
            ),
            models.UniqueConstraint(
                fields=("integration",),
                condition=Q(revoked_at__isnull=True, grace_until__isnull=True),
                name="one_current_token_per_integration",
            ),
            models.UniqueConstraint(
                fields=("integration",),
                condition=Q(revoked_at__isnull=True, grace_until__isnull=False),
                name="one_previous_token_in_grace_per_integration",
            ),
        )

    def __str__(self) -> str:
        return f"{self.client}: {self.masked}"

    @property
    def masked(self) -> str:
        return secret.mask(self.last_four)

    @property
    def valid_until(self) -> datetime:
        """When it stops working: its expiry, or the end of its grace period if sooner."""
        if self.grace_until is None:
            return self.expires_at
        return min(self.grace_until, self.expires_at)

    @property
    def retrievable(self) -> bool:
        """Whether an encrypted copy was kept: generated while retrieval was allowed."""
        return self.ciphertext is not None

    @property
    def copy_opens(self) -> bool:
        """Whether the kept copy opens with the keys configured now; not once the key it was
        kept with is gone from ``TOKEN_ENCRYPTION_KEYS``."""
        return self.ciphertext is not None and sealing.unseal(self.ciphertext) is not None

    def retrieve(self, *, via: str, actor: Actor) -> str | None:
        """The plaintext from the kept copy, audited as retrieved ``via`` the screen or the
        API; ``None`` (nothing recorded) when no copy was kept or no configured key opens it."""
        plaintext = sealing.unseal(self.ciphertext) if self.ciphertext is not None else None
        if plaintext is not None:
            AuditEvent.record(
                self.client,
                AuditEvent.Action.TOKEN_RETRIEVED,
                actor=actor,
                token_last_four=self.last_four,
                detail=via,
            )
        return plaintext

    def check_usable_by(self, client_id: int | None, now: datetime | None = None) -> None:
        """Raise ``TokenRejected`` unless this is ``client_id``'s unrevoked, unexpired token,
        current or in its grace period."""
        now = now or timezone.now()
        if self.client_id != client_id or self.revoked_at is not None:
            raise TokenRejected(Rejection.INVALID, self.last_four)
        if self.grace_until is not None and self.grace_until <= now:
            raise TokenRejected(Rejection.INVALID, self.last_four)
        if self.is_expired(now):
            raise TokenRejected(Rejection.EXPIRED, self.last_four)

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def time_remaining(self, now: datetime | None = None) -> timedelta:
        return max(self.expires_at - (now or timezone.now()), timedelta(0))

    def last_used(self, now: datetime | None = None) -> str:
        """ "Last used 3 minutes ago from 203.0.113.5", or "Never used"."""
        return expiry.describe_last_used(
            self.last_used_at, self.last_used_from, now or timezone.now()
        )


class TokenReminder(models.Model):
    """An expiry reminder sent about a token: each kind at most once per token, which the
    database holds (docs/tokens.md#expiry-reminders)."""

    class Kind(models.TextChoices):
        # In the order they fall due.
        SEVEN_DAYS = "7_days", "expires within 7 days"
        ONE_DAY = "1_day", "expires within 1 day"
        EXPIRED = "expired", "has expired"

    token = models.ForeignKey(ProfileToken, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("-sent_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("token", "kind"), name="one_reminder_of_each_kind_per_token"
            ),
        )

    def __str__(self) -> str:
        return f"{self.token}: {self.get_kind_display()}"
