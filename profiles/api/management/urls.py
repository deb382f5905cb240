from __future__ import annotations

from django.urls import path

from profiles.api.management import views

app_name = "admin_api"

urlpatterns = [
    path("authentication/token", views.token, name="token"),
    path("authentication/token/previous", views.previous_token, name="previous_token"),
    path("clients/settings", views.client_settings, name="settings"),
]
