from __future__ import annotations

from django.urls import path

from profiles.api.management import usage_views, views

app_name = "admin_api"

urlpatterns = [
    path("authentication/token", views.token, name="token"),
    path("authentication/token/previous", views.previous_token, name="previous_token"),
    path("authentication/token/usage", usage_views.client_token_usage, name="token_usage"),
    path(
        "authentication/tokens/<str:token_id>/usage",
        usage_views.integration_token_usage,
        name="integration_token_usage",
    ),
    path("clients/settings", views.client_settings, name="settings"),
]
