from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from profiles import api, views

urlpatterns: list[URLPattern | URLResolver] = [
    # Profile APIs (SPEC 6.1, 6.2)
    path("m2/<str:client>/profile/update", api.update, name="profile_update"),
    path(
        "rest/v1/profiles/thirdPartyId/<str:third_party_id>",
        api.fetch_by_third_party_id,
        name="profile_fetch_by_third_party_id",
    ),
    path("rest/v1/profiles/<str:pc_id>", api.fetch_by_pc_id, name="profile_fetch"),
    # Pages (SPEC 3)
    path("", views.home, name="home"),
    path(
        "setup/<slug:client_code>/implementation/",
        views.implementation,
        name="implementation",
    ),
]
