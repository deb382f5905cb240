"""Setup, Integration tokens: a client's named tokens beside its own
(docs/screen.md#integration-tokens). Editors and Publishers see them; only an Approver adds,
re-generates or revokes one, and the role is checked again on every POST."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from profiles.access.actors import Actor
from profiles.access.addresses import caller_address
from profiles.access.models import Client, Role
from profiles.pages.forms import (
    IntegrationAddForm,
    IntegrationForm,
    IntegrationRegenerateForm,
    TokenForm,
)
from profiles.pages.permissions import client_for
from profiles.pages.usage_chart import token_charts
from profiles.rules.errors import ProductError
from profiles.tokens.integration_listing import integrations_of
from profiles.tokens.integrations import MAX_PER_CLIENT, Integration
from profiles.tokens.models import ProfileApiSettings, ProfileToken

SEE = "see integration tokens"
MANAGE = "manage integration tokens"


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def integrations(request: HttpRequest, client_code: str) -> HttpResponse:
    """The page; a POST is dispatched on its submit button's name."""
    client, role = client_for(request.user, client_code, Role.EDITOR, action=SEE)
    if request.method != "POST":
        return _render(request, client, role)
    client, role = client_for(request.user, client_code, Role.APPROVER, action=MANAGE)
    actor = Actor.person(request.user, caller_address(request))
    if "add" in request.POST:
        return _add(request, client, role, actor)
    if "regenerate" in request.POST:
        return _regenerate(request, client, role, actor)
    if "revoke" in request.POST:
        return _revoke(request, client, actor)
    return _render(request, client, role, status=400)


def _render(
    request: HttpRequest, client: Client, role: Role, status: int = 200, **extra: Any
) -> HttpResponse:
    listed = integrations_of(client)
    context = {
        "client": client,
        "integrations": listed,
        "may_manage": role >= Role.APPROVER,
        "usage_charts": token_charts(
            client, {entry.integration.pk: entry.integration.name for entry in listed}
        ),
        "room_left": len(listed) < MAX_PER_CLIENT,
        "max_per_client": MAX_PER_CLIENT,
        "require_authentication": ProfileApiSettings.for_client(client).require_authentication,
        "add_form": IntegrationAddForm(),
        "token_form": TokenForm(),
        **extra,
    }
    return render(request, "profiles/integrations.html", context, status=status)


def _add(request: HttpRequest, client: Client, role: Role, actor: Actor) -> HttpResponse:
    form = IntegrationAddForm(request.POST)
    if form.is_valid():
        try:
            integration, _, plaintext = ProfileToken.objects.add_integration(
                client,
                name=form.cleaned_data["name"],
                granted=form.cleaned_data["permissions"],
                expires_in_days=form.cleaned_data["expires_in_days"],
                actor=actor,
            )
        except ProductError as refused:  # the name taken meanwhile, or no room left
            form.add_error(None, refused.message)
        else:
            # The plaintext goes into this response only: never a redirect, session or message.
            return _render(request, client, role, new_token=plaintext, new_name=integration.name)
    return _render(request, client, role, status=400, add_form=form)


def _chosen(request: HttpRequest, client: Client) -> Integration | None:
    """The client's unrevoked integration the POST names; ``None`` (and a warning) when the
    page was stale."""
    found = None
    form = IntegrationForm(request.POST)
    if form.is_valid():
        found = (
            Integration.objects.filter(client=client, pk=form.cleaned_data["integration"])
            .unrevoked()
            .first()
        )
    if found is None:
        messages.warning(request, "That integration token no longer exists: nothing was changed.")
    return found


def _regenerate(request: HttpRequest, client: Client, role: Role, actor: Actor) -> HttpResponse:
    """Re-generate, once confirmed on a page of its own that offers the grace choices."""
    integration = _chosen(request, client)
    if integration is None:
        return redirect("integrations", client_code=client.code)
    form = IntegrationRegenerateForm(request.POST)
    confirmed = request.POST.get("regenerate") == "confirmed"
    if not confirmed or not form.is_valid():
        shown = form if confirmed else IntegrationRegenerateForm(initial=_asked(integration))
        return render(
            request,
            "profiles/confirm_integration.html",
            {"client": client, "integration": integration, "form": shown, "regenerate": True},
            status=400 if confirmed else 200,
        )
    _, plaintext = ProfileToken.objects.issue(
        client,
        integration=integration,
        expires_in_days=form.cleaned_data["expires_in_days"],
        actor=actor,
        previous_token_grace_seconds=form.cleaned_data["previous_token_grace"] or 0,
    )
    return _render(request, client, role, new_token=plaintext, new_name=integration.name)


def _asked(integration: Integration) -> dict[str, int]:
    """The confirmation's starting choices: the default expiry, "Immediately"."""
    return {"integration": integration.pk, "previous_token_grace": 0}


def _revoke(request: HttpRequest, client: Client, actor: Actor) -> HttpResponse:
    """Revoke, once confirmed on a page of its own."""
    integration = _chosen(request, client)
    if integration is None:
        return redirect("integrations", client_code=client.code)
    if request.POST.get("revoke") != "confirmed":
        form = IntegrationForm(initial={"integration": integration.pk})
        return render(
            request,
            "profiles/confirm_integration.html",
            {"client": client, "integration": integration, "form": form, "regenerate": False},
        )
    if ProfileToken.objects.revoke_integration(integration, actor=actor):
        messages.success(
            request,
            f"Revoked the integration token {integration.name!r}: calls that use it now fail.",
        )
    return redirect("integrations", client_code=client.code)
