"""Setup, Implementation, Profile API Settings: the card and its forms (docs/screen.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from profiles.access.actors import Actor
from profiles.access.addresses import caller_address
from profiles.access.models import Client, Role
from profiles.pages.card import Card
from profiles.pages.forms import (
    AllowedNetworksForm,
    RequireAuthenticationForm,
    RevokePreviousForm,
    TokenForm,
    TokenRetrievableForm,
)
from profiles.pages.permissions import client_for
from profiles.rules.errors import ErrorCode, ProductError
from profiles.tokens.models import ProfileApiSettings, ProfileToken

MANAGE_SETTINGS = "manage Profile API Settings"


def _render_card(
    request: HttpRequest, client: Client, status: int = 200, **extra: Any
) -> HttpResponse:
    card = Card.load(client)
    context = {
        "card": card,
        "auth_form": RequireAuthenticationForm.showing(card.settings.require_authentication),
        "networks_form": AllowedNetworksForm.showing(list(card.settings.allowed_networks)),
        "retrievable_form": TokenRetrievableForm(
            initial={"token_retrievable": card.settings.token_retrievable}
        ),
        "token_form": TokenForm(),
        "revoke_form": RevokePreviousForm(
            initial={"previous_token": card.previous.pk if card.previous else None}
        ),
        **extra,
    }
    return render(request, "profiles/implementation.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def implementation(request: HttpRequest, client_code: str) -> HttpResponse:
    """The Profile API Settings card. A POST is dispatched on its submit button's name;
    the role is checked again on every request."""
    client, _ = client_for(request.user, client_code, Role.APPROVER, action=MANAGE_SETTINGS)
    if request.method != "POST":
        return _render_card(request, client)
    actor = Actor.person(request.user, caller_address(request))

    if "save_authentication" in request.POST:
        auth_form = RequireAuthenticationForm(request.POST)
        return _save_setting(
            request,
            client,
            actor,
            "auth_form",
            auth_form,
            lambda: auth_form.enabled,
            ProfileApiSettings.set_require_authentication,
            lambda enabled: f"Require Authentication {'enabled' if enabled else 'disabled'}.",
        )

    if "save_networks" in request.POST:
        networks_form = AllowedNetworksForm(request.POST)
        return _save_setting(
            request,
            client,
            actor,
            "networks_form",
            networks_form,
            lambda: networks_form.cleaned_data["allowed_networks"],
            ProfileApiSettings.set_allowed_networks,
            lambda networks: (
                "Allowed networks saved."
                if networks
                else "Profile API calls accepted from any address."
            ),
        )

    if "save_retrievable" in request.POST:
        # Turning it off erases every kept copy of the token.
        retrievable_form = TokenRetrievableForm(request.POST)
        return _save_setting(
            request,
            client,
            actor,
            "retrievable_form",
            retrievable_form,
            lambda: retrievable_form.cleaned_data["token_retrievable"],
            ProfileApiSettings.set_token_retrievable,
            lambda enabled: (
                "Token retrieval allowed: tokens generated from now on can be retrieved again."
                if enabled
                else "Token retrieval turned off: every kept copy of the token was erased."
            ),
        )

    if "reveal" in request.POST:
        return _reveal(request, client, actor)

    if "generate" in request.POST or "regenerate" in request.POST:
        token_form = TokenForm(request.POST)
        if not token_form.is_valid():
            return _render_card(request, client, status=400, token_form=token_form)
        expires_in_days = token_form.cleaned_data["expires_in_days"]
        # Replacing a working token breaks its callers, so it is only done once confirmed,
        # even when a stale page posts "generate".
        replaces_active = ProfileToken.objects.of_client(client).active().exists()
        if replaces_active and request.POST.get("regenerate") != "confirmed":
            return render(
                request,
                "profiles/confirm_regenerate.html",
                {
                    "client": client,
                    # Unbound, so the grace choice shows what was sent, or "Immediately".
                    "token_form": TokenForm(
                        initial={
                            "expires_in_days": expires_in_days,
                            "previous_token_grace": token_form.cleaned_data["previous_token_grace"]
                            or 0,
                        }
                    ),
                    "expires_in_days": expires_in_days,
                    "previous": ProfileToken.objects.of_client(client).in_grace().first(),
                },
            )
        try:
            _, plaintext = ProfileToken.objects.issue(
                client,
                expires_in_days=expires_in_days,
                actor=actor,
                # A grace period keeps a working token only; "Generate" has none to keep.
                previous_token_grace_seconds=(token_form.cleaned_data["previous_token_grace"] or 0)
                if replaces_active
                else 0,
            )
        except ProductError as refused:
            # Retrieval is on and no key is configured (docs/tokens.md#retrievable-tokens):
            # nothing was issued; the card says why.
            if refused.code != ErrorCode.TOKEN_ENCRYPTION_KEY_MISSING:
                raise
            messages.error(request, refused.message)
            return _render_card(request, client, status=503)
        # The plaintext goes into this response only: never a redirect, session or message.
        return _render_card(request, client, new_token=plaintext)

    if "revoke_previous" in request.POST:
        return _revoke_previous(request, client, actor)

    return _render_card(request, client, status=400)


def _save_setting[V](
    request: HttpRequest,
    client: Client,
    actor: Actor,
    form_name: str,
    form: Form,
    value: Callable[[], V],
    save: Callable[..., bool],
    saved: Callable[[V], str],
) -> HttpResponse:
    """One of the card's settings forms posted: an invalid ``form`` is shown again on the
    card (as ``form_name``, 400); otherwise ``save`` stores its ``value`` (audited) and, when
    anything changed, the card says ``saved(value)``."""
    if not form.is_valid():
        return _render_card(request, client, status=400, **{form_name: form})
    chosen = value()
    changed = save(
        ProfileApiSettings.for_client(client),
        chosen,
        actor=actor,
    )
    if changed:
        messages.success(request, saved(chosen))
    return redirect("implementation", client_code=client.code)


def _reveal(request: HttpRequest, client: Client, actor: Actor) -> HttpResponse:
    """Show the active token again, from its kept copy; audited."""
    token = ProfileToken.objects.of_client(client).active().first()
    plaintext = (
        token.retrieve(via="revealed on the screen", actor=actor) if token is not None else None
    )
    if plaintext is None:
        messages.warning(
            request,
            "The token cannot be revealed: no copy of it is kept, or none of the configured "
            "keys opens it. Re-generate it instead.",
        )
        return redirect("implementation", client_code=client.code)
    # As a new token: in this response only, never a redirect, session or message.
    return _render_card(request, client, revealed_token=plaintext)


def _revoke_previous(request: HttpRequest, client: Client, actor: Actor) -> HttpResponse:
    """Revoke now: end the previous token's grace period, once confirmed."""
    form = RevokePreviousForm(request.POST)
    if not form.is_valid():
        return _render_card(request, client, status=400)
    token_id = form.cleaned_data["previous_token"]
    if request.POST.get("revoke_previous") != "confirmed":
        card = Card.load(client)
        if card.previous is not None and card.previous.pk == token_id:
            return render(
                request,
                "profiles/confirm_revoke_previous.html",
                {
                    "client": client,
                    "previous": card.previous,
                    "still_in_use": card.previous_still_in_use,
                    "last_used": card.previous_last_used,
                    "revoke_form": form,
                },
            )
    else:
        revoked = ProfileToken.objects.revoke_previous(client, actor=actor, token_id=token_id)
        if revoked is not None:
            messages.success(
                request, f"Revoked the previous token {revoked.masked}: calls that use it now fail."
            )
            return redirect("implementation", client_code=client.code)
    messages.warning(request, "That previous token no longer works: there was nothing to revoke.")
    return redirect("implementation", client_code=client.code)
