"""The test provider's addresses: django-oauth-toolkit under ``o/`` (the issuer), its sign-in
page, and ``control/``, where the tests set up people, applications and faults."""

from __future__ import annotations

import hmac
import json
import os

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import Application

from tests.identity_provider.validator import FAULTS


def _person(spec: dict[str, object]) -> None:
    user, _ = User.objects.get_or_create(username=spec["username"])
    user.email = str(spec.get("email", ""))
    user.set_password(str(spec["password"]))
    user.save()
    groups = [Group.objects.get_or_create(name=name)[0] for name in spec["groups"]]  # type: ignore[attr-defined]
    user.groups.set(groups)


def _application(spec: dict[str, object]) -> None:
    Application.objects.filter(client_id=spec["client_id"]).delete()
    Application.objects.create(
        name=spec["client_id"],
        client_id=spec["client_id"],
        client_secret=spec["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=spec["grant"],
        redirect_uris=spec.get("redirect_uris", ""),
        post_logout_redirect_uris=spec.get("post_logout_redirect_uris", ""),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
        user=User.objects.get(username=spec["owner"]) if spec.get("owner") else None,
    )


def _fault(spec: dict[str, object]) -> None:
    name = str(spec["name"])
    if name and name not in FAULTS:
        raise ValueError(name)
    (settings.STATE / "fault").write_text(name)


ACTIONS = {"person": _person, "application": _application, "fault": _fault}


@csrf_exempt
def control(request: HttpRequest) -> HttpResponse:
    given = request.headers.get("X-Control-Secret", "")
    if not hmac.compare_digest(given, os.environ["PROVIDER_CONTROL_SECRET"]):
        return HttpResponseForbidden()
    spec = json.loads(request.body)
    ACTIONS[spec.pop("action")](spec)
    return HttpResponse(status=204)


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("control/", control),
]
