from __future__ import annotations

from django.urls import path

from profiles.api.management import integrations, views

app_name = "admin_api"

urlpatterns = [
    path("authentication/token", views.token, name="token"),
    path("authentication/token/previous", views.previous_token, name="previous_token"),
    path("authentication/tokens", integrations.integration_tokens, name="integration_tokens"),
    # Any id, not only digits: one no token has gets the API's JSON 404, not an HTML page.
    path(
        "authentication/tokens/<str:token_id>",
        integrations.integration_token,
        name="integration_token",
    ),
    path(
        "authentication/tokens/<str:token_id>/regenerate",
        integrations.integration_token_regeneration,
        name="integration_token_regeneration",
    ),
    path("clients/settings", views.client_settings, name="settings"),
]
