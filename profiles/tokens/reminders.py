"""Expiry reminders: e-mail the client's Approvers before the active token expires, and when
it has (docs/tokens.md#expiry-reminders).

A sweep (``manage.py send_token_reminders``; ``make run`` runs one at start-up and every ten
minutes) looks at every client's current token. When a reminder falls due (7 days before
expiry, 1 day before, expired) it first records it in ``TokenReminder``, whose unique
constraint lets one sweep only claim it, then sends it, then audits it. So two sweeps at once,
or a sweep after a restart, never send one twice. A send that fails gives the claim back,
and the next sweep tries again; a process killed between the claim and the send leaves that
one reminder unsent, never sent twice.

A reminder whose moment came before the token was even created is not sent (a 7-day token
is not "expires within 7 days" news), and only the latest reminder due is sent: after a pause
of the sweeps, a token a day from expiry gets the 1-day reminder, not both.

The same sweep records as ended the grace periods of previous tokens that have run out
(``ProfileTokenQuerySet.end_finished_graces``), and deletes the token usage counts past the
days kept (``usage.prune``, docs/tokens.md#usage).
"""

from __future__ import annotations

import logging
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, mailers
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from profiles.access.actors import SYSTEM
from profiles.access.models import AuditEvent, Client, Membership, Role
from profiles.tokens import expiry, usage
from profiles.tokens.models import ProfileToken, TokenReminder

logger = logging.getLogger(__name__)

Kind = TokenReminder.Kind

# Most urgent first: the first window a token is in is the reminder due.
BEFORE_EXPIRY: tuple[tuple[TokenReminder.Kind, timedelta], ...] = (
    (Kind.ONE_DAY, timedelta(days=1)),
    (Kind.SEVEN_DAYS, timedelta(days=7)),
)
EARLIEST = max(before for _, before in BEFORE_EXPIRY)


@dataclass(frozen=True)
class Sweep:
    """What one sweep did."""

    reminders: list[TokenReminder]
    emails: int
    graces_ended: int
    usage_days_pruned: int = 0


def due(token: ProfileToken, now: datetime) -> TokenReminder.Kind | None:
    """The reminder ``token`` is due at ``now``, sent or not; ``None`` when none is."""
    if token.is_expired(now):
        return Kind.EXPIRED
    remaining = token.expires_at - now
    for kind, before in BEFORE_EXPIRY:
        if remaining <= before:
            # A token that never lived longer than this was created inside the window.
            return kind if token.expires_at - token.created_at > before else None
    return None


def recipients(client: Client) -> list[str]:
    """The e-mail addresses of the client's active Approvers, each once."""
    addresses = (
        Membership.objects.filter(client=client, role=Role.APPROVER, user__is_active=True)
        .exclude(user__email="")
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    return list(dict.fromkeys(addresses))


def settings_url(client: Client) -> str:
    return settings.SITE_URL + reverse("implementation", kwargs={"client_code": client.code})


def message(token: ProfileToken, kind: TokenReminder.Kind, to: str, now: datetime) -> EmailMessage:
    """The reminder to one Approver: the client, the masked token, the expiry and the
    settings page; never the token."""
    expires_at = timezone.localtime(token.expires_at)
    context = {
        "client": token.client,
        "masked": token.masked,
        "expires_at": f"{expires_at:%Y-%m-%d %H:%M %Z}",
        "expired": kind == Kind.EXPIRED,
        "remaining": expiry.describe_remaining(token.expires_at - now),
        "url": settings_url(token.client),
    }
    subject = f"[targetadmin] Profile token of {token.client.code} {kind.label}"
    text = render_to_string("profiles/email/token_reminder.txt", context)
    # Lines of at most 72 characters (a long link aside) keep the body plain 8-bit text,
    # readable as printed by the console backend, rather than quoted-printable.
    paragraphs = [" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n")]
    body = "\n\n".join(
        textwrap.fill(paragraph, 72, break_long_words=False, break_on_hyphens=False)
        for paragraph in paragraphs
    )
    return EmailMessage(subject=subject, body=body + "\n", to=[to])


def sweep(now: datetime | None = None) -> Sweep:
    """Send every reminder due and not yet sent; record grace periods that ran out."""
    now = now or timezone.now()
    graces_ended = ProfileToken.objects.end_finished_graces(now, actor=SYSTEM)
    sent: list[TokenReminder] = []
    emails = 0
    candidates = (
        ProfileToken.objects.current()
        .filter(integration__isnull=True, expires_at__lte=now + EARLIEST)
        .select_related("client")
        .order_by("expires_at")
    )
    for token in candidates:
        kind = due(token, now)
        if kind is None or token.reminders.filter(kind=kind).exists():
            continue
        to = recipients(token.client)
        if not to:
            logger.info(
                "no Approver of %s has an e-mail address: the %s reminder waits",
                token.client.code,
                kind,
            )
            continue
        reminder = _claim(token, kind, now, len(to))
        if reminder is None:
            continue
        try:
            with mailers.default as connection:
                connection.send_messages([message(token, kind, address, now) for address in to])
        except Exception:
            # Given back: the next sweep sends it.
            reminder.delete()
            logger.exception("could not send the %s reminder of %s", kind, token.client.code)
            continue
        AuditEvent.record(
            token.client,
            AuditEvent.Action.REMINDER_SENT,
            actor=SYSTEM,
            token_last_four=token.last_four,
            detail=f"{kind.label}, to {len(to)} Approver{'s' if len(to) != 1 else ''}",
        )
        sent.append(reminder)
        emails += len(to)
    return Sweep(sent, emails, graces_ended, usage.prune(now))


def _claim(
    token: ProfileToken, kind: TokenReminder.Kind, now: datetime, count: int
) -> TokenReminder | None:
    """Record the reminder as sent, or ``None`` when another sweep already has."""
    try:
        with transaction.atomic():
            return TokenReminder.objects.create(
                token=token, kind=kind, sent_at=now, recipients=count
            )
    except IntegrityError:
        return None
