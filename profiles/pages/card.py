"""What the Profile API Settings card shows for a client (docs/screen.md#the-card)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from profiles.access.models import AuditEvent, Client
from profiles.pages.usage_chart import UsageChart, token_charts
from profiles.tokens import expiry
from profiles.tokens.models import ProfileApiSettings, ProfileToken

RECENT_EVENTS = 10


@dataclass(frozen=True)
class CardWarning:
    level: str  # a Bootstrap alert colour: "danger" or "warning"
    message: str


@dataclass(frozen=True)
class Card:
    """The state of one client's Profile API Settings, read once per page."""

    client: Client
    settings: ProfileApiSettings
    token: ProfileToken | None  # the current token, active or expired
    previous: ProfileToken | None  # the replaced token, while its grace period lasts
    now: datetime
    events: QuerySet[AuditEvent] = field(repr=False)
    # The client's own token's calls over the last 30 days, across its re-generations.
    token_usage: UsageChart = field(repr=False)

    @classmethod
    def load(cls, client: Client, now: datetime | None = None) -> Card:
        now = now or timezone.now()
        tokens = ProfileToken.objects.of_client(client)
        return cls(
            client=client,
            settings=ProfileApiSettings.for_client(client),
            token=tokens.current().select_related("created_by").first(),
            previous=tokens.in_grace(now).first(),
            now=now,
            events=client.audit_events.select_related("actor")[:RECENT_EVENTS],
            token_usage=token_charts(client, {None: "The client's token"}, now)[0],
        )

    @property
    def last_used(self) -> str:
        return self.token.last_used(self.now) if self.token else ""

    @property
    def previous_stops_in(self) -> str:
        if self.previous is None:
            return ""
        return expiry.describe_remaining(self.previous.valid_until - self.now)

    @property
    def previous_still_in_use(self) -> bool:
        """Used since it was replaced, as far as the once-a-minute record tells: a use
        recorded less than a minute before the replacement may have been followed by
        unrecorded ones after it, so it counts too. Only a token whose last recorded use is
        older than that is certainly unused since (docs/tokens.md#last-used)."""
        previous = self.previous
        if previous is None or previous.last_used_at is None:
            return False
        replaced_at = self.token.created_at if self.token is not None else previous.created_at
        return previous.last_used_at > replaced_at - expiry.LAST_USED_RESOLUTION

    @property
    def previous_last_used(self) -> str:
        """ "Still in use: last used 2 minutes ago from …", or what is known of its use."""
        if self.previous is None:
            return ""
        used = self.previous.last_used(self.now)
        if self.previous_still_in_use:
            return f"Still in use: {used[0].lower()}{used[1:]}"
        return f"Not used since it was replaced ({used[0].lower()}{used[1:]})"

    @property
    def token_expired(self) -> bool:
        return self.token is not None and self.token.is_expired(self.now)

    @property
    def active_token(self) -> ProfileToken | None:
        return None if self.token is None or self.token_expired else self.token

    @property
    def time_remaining(self) -> str:
        return expiry.describe_remaining(self.token.time_remaining(self.now)) if self.token else ""

    @property
    def may_reveal(self) -> bool:
        """Reveal is offered for an active token whose kept copy the configured keys open."""
        token = self.active_token
        return token is not None and token.copy_opens

    @property
    def retrievability(self) -> str:
        """Why the token cannot be shown again (docs/tokens.md#retrievable-tokens), or ""
        when it can."""
        if self.token is None or self.may_reveal:
            return ""
        if self.token_expired:
            return "Not retrievable: it no longer works."
        if self.token.retrievable:
            return (
                "Not retrievable: the kept copy cannot be read with the current encryption keys."
                " Re-generate it to be able to retrieve it again."
            )
        if self.settings.token_retrievable:
            return (
                "Not retrievable: it was generated while retrieval was off. "
                "Re-generate it to be able to retrieve it again."
            )
        return "Not retrievable: only its digest is kept."

    @property
    def may_regenerate(self) -> bool:
        """Replacing a working token needs a confirmation, so it has its own form."""
        return self.active_token is not None

    @property
    def may_generate(self) -> bool:
        """Offered once authentication is on (or an expired token needs replacing) and no
        active token exists."""
        return self.active_token is None and (
            self.settings.require_authentication or self.token is not None
        )

    @property
    def expiring_soon(self) -> bool:
        token = self.active_token
        warning_window = timedelta(days=settings.TOKEN_EXPIRY_WARNING_DAYS)
        return token is not None and token.time_remaining(self.now) <= warning_window

    @property
    def warnings(self) -> list[CardWarning]:
        found = []
        if self.settings.require_authentication and self.active_token is None:
            found.append(
                CardWarning(
                    "danger",
                    "Authentication is required but there is no valid token: "
                    "every profile API call will fail until you generate one.",
                )
            )
        if self.token is not None and self.token_expired:
            found.append(
                CardWarning(
                    "danger",
                    f"The token {self.token.masked} expired on "
                    f"{timezone.localtime(self.token.expires_at):%Y-%m-%d %H:%M %Z}. "
                    "API calls using it fail.",
                )
            )
        elif self.expiring_soon:
            found.append(
                CardWarning(
                    "warning",
                    f"The token expires in {self.time_remaining}. Re-generate it and "
                    "update your scripts before then.",
                )
            )
        return found
