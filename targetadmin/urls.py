from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from profiles.api import scrape
from targetadmin import health

# A busy database gets a 503 page with Retry-After instead of the 500 page.
handler500 = "profiles.pages.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", scrape.metrics, name="metrics"),
    path("", include("profiles.urls")),
]
