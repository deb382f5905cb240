from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from mozilla_django_oidc.views import OIDCLogoutView

from profiles.api import scrape
from profiles.pages import sign_in, single_sign_on
from targetadmin import health

# A busy database gets a 503 page with Retry-After instead of the 500 page.
handler500 = "profiles.pages.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", sign_in.SignInView.as_view(), name="login"),
    # Signing out ends the provider's session too when the person signed in through it
    # (OIDC_OP_LOGOUT_URL_METHOD); POST only, as Django's own.
    path("accounts/logout/", OIDCLogoutView.as_view(), name="logout"),
    # Single sign-on (docs/operations.md#single-sign-on); 404 while it is not configured.
    path(
        "oidc/authenticate/",
        single_sign_on.ProviderRedirectView.as_view(),
        name="oidc_authentication_init",
    ),
    path(
        "oidc/callback/",
        single_sign_on.ProviderCallbackView.as_view(),
        name="oidc_authentication_callback",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", scrape.metrics, name="metrics"),
    path("", include("profiles.urls")),
]
