from __future__ import annotations

from django.urls import path

from profiles.api.management import integrations, usage_views, views

app_name = "admin_api"

urlpatterns = [
    path("authentication/token", views.token, name="token"),
    path("authentication/token/previous", views.previous_token, name="previous_token"),
    path("authentication/token/usage", usage_views.client_token_usage, name="token_usage"),
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
    path(
        "authentication/tokens/<str:token_id>/usage",
        integrations.integration_token_usage,
        name="integration_token_usage",
    ),
    path("clients/settings", views.client_settings, name="settings"),
]
