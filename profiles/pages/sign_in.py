"""The sign-in page: the password form, the provider's button when single sign-on is
configured, or the button alone when passwords are switched off
(docs/operations.md#switching-passwords-off); the Django admin's sign-in page offers the
button too."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from profiles.access import provider

PASSWORDS_OFF = "Password sign-in is switched off here: sign in with {provider}."


def single_sign_on(request: HttpRequest) -> dict[str, str]:
    """A context processor: the provider's name for the "Sign in with …" buttons of this page
    and of the Django admin's, when single sign-on is configured."""
    return {"provider_name": settings.OIDC_PROVIDER_NAME} if provider.is_configured() else {}


class SignInView(LoginView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["password_sign_in"] = settings.PASSWORD_SIGN_IN
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if settings.PASSWORD_SIGN_IN:
            response: HttpResponse = super().post(request, *args, **kwargs)
            return response
        context = self.get_context_data(
            refusal=PASSWORDS_OFF.format(provider=settings.OIDC_PROVIDER_NAME)
        )
        return self.render_to_response(context, status=403)
