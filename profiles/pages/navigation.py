"""The navigation beside every page of a client, as a template context processor.

A link is shown only when its page exists: each entry's path is resolved against the URL
configuration, so a page joins the navigation by being routed, and nothing links to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from profiles.access.models import Client
from profiles.access.roles import clients_of, role_of

if TYPE_CHECKING:
    from django.http import HttpRequest

# (section, ((label, path), ...)); "{client}" stands for the client code.
SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Setup",
        (
            ("Implementation", "/setup/{client}/implementation/"),
            ("Integration tokens", "/setup/{client}/integrations/"),
        ),
    ),
    (
        "Audiences",
        (
            ("Profiles", "/clients/{client}/profiles/"),
            ("Batches", "/clients/{client}/batches/"),
        ),
    ),
)
CLIENT_KWARGS = ("client_code", "client")


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    active: bool


@dataclass(frozen=True)
class NavSection:
    title: str
    links: tuple[NavLink, ...]


def routed(path: str) -> str | None:
    """The canonical URL of ``path`` if a page is routed there, else None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    try:
        return reverse(match.view_name, args=match.args, kwargs=match.kwargs)
    except NoReverseMatch:  # an unnamed route: its path is all there is
        return path


def sections_for(client: Client, current_path: str) -> list[NavSection]:
    sections = []
    for title, entries in SECTIONS:
        links = []
        for label, template in entries:
            url = routed(template.format(client=client.code))
            if url is not None:
                links.append(NavLink(label, url, active=current_path.startswith(url)))
        if links:
            sections.append(NavSection(title, tuple(links)))
    return sections


def _client_code(request: HttpRequest) -> str | None:
    match = request.resolver_match
    if match is None:
        return None
    for name in CLIENT_KWARGS:
        code = match.kwargs.get(name)
        if isinstance(code, str):
            return code
    return None


def navigation(request: HttpRequest) -> dict[str, Any]:
    """``nav_client`` and ``nav_sections`` for members of the page's client, and whether
    the signed-in user has several clients to switch between."""
    if not request.user.is_authenticated:
        return {}
    context: dict[str, Any] = {
        "nav_switch_clients": request.user.is_superuser or clients_of(request.user).count() > 1
    }
    code = _client_code(request)
    client = Client.objects.filter(code=code).first() if code else None
    if client is not None and role_of(request.user, client) is not None:
        context["nav_client"] = client
        context["nav_sections"] = sections_for(client, request.path)
    return context
