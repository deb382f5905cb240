"""The read-only Profiles page: a member of a client looks up one visitor profile."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from profiles.access.models import Role
from profiles.pages.lookup import ProfileLookupForm, attribute_rows, find_profile
from profiles.pages.permissions import client_for


@login_required
@require_safe
def profile_lookup(request: HttpRequest, client_code: str) -> HttpResponse:
    client, _ = client_for(request.user, client_code, Role.OBSERVER)
    form = ProfileLookupForm(request.GET if "profile_id" in request.GET else None)
    context: dict[str, object] = {"client": client, "form": form, "searched": False}
    if form.is_valid():
        profile = find_profile(client, form.kind, form.cleaned_data["profile_id"])
        context.update(
            searched=True,
            kind=form.kind.value,
            profile_id=form.cleaned_data["profile_id"],
            profile=profile,
            attributes=attribute_rows(profile) if profile else [],
        )
    return render(request, "profiles/profile_lookup.html", context)
