"""The landing page after sign-in: straight to the one client's screen, or a choice."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from profiles.access.roles import clients_of, role_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """One client: straight to its screen. Several (or a superuser): pick one."""
    clients = list(clients_of(request.user))
    if len(clients) == 1 and not getattr(request.user, "is_superuser", False):
        return redirect("implementation", client_code=clients[0].code)
    choices = [(client, role_of(request.user, client)) for client in clients]
    return render(request, "profiles/home.html", {"choices": choices})
