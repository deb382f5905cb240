from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from profiles import api, batch_api, batch_pages, profiles_page, views

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
    # Bulk profile APIs (SPEC 6.3-6.5)
    path("m2/<str:client>/profile/batchUpdate", batch_api.batch_update_v1, name="batch_update"),
    path(
        "m2/<str:client>/v2/profile/batchUpdate",
        batch_api.batch_update_v2,
        name="batch_update_v2",
    ),
    path("m2/<str:client>/profile/batchStatus", batch_api.batch_status, name="batch_status"),
    path(
        "m2/<str:client>/v2/profile/batchStatus",
        batch_api.batch_status,
        name="batch_status_v2",
    ),
    path("api/v1/clients/<str:client>/profiles/bulk", batch_api.bulk, name="bulk"),
    path(
        "api/v1/clients/<str:client>/batches/<str:batch_id>",
        batch_api.bulk_batch,
        name="bulk_batch",
    ),
    path("api/openapi.json", batch_api.openapi, name="openapi"),
    # Token and settings management API (SPEC 7)
    # Any segment, not only a slug: a bad code gets the API's JSON answer, not an HTML 404.
    path("<str:client_code>/target/", include("profiles.admin_api.urls")),
    # The read-only Profiles page
    path(
        "clients/<slug:client_code>/profiles/",
        profiles_page.profile_lookup,
        name="profile_lookup",
    ),
    # Batches pages
    path("clients/<slug:client_code>/batches/", batch_pages.batches, name="client_batches"),
    path(
        "clients/<slug:client_code>/batches/<str:batch_id>/",
        batch_pages.batch,
        name="client_batch",
    ),
    path(
        "clients/<slug:client_code>/batches/<str:batch_id>/failures.csv",
        batch_pages.failures_csv,
        name="client_batch_failures",
    ),
]
