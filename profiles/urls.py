from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from profiles.api import batch_views, profile_views
from profiles.pages import batches, home, implementation, integrations, profiles

urlpatterns: list[URLPattern | URLResolver] = [
    # Profile APIs (docs/api.md)
    path("m2/<str:client>/profile/update", profile_views.update, name="profile_update"),
    path(
        "rest/v1/profiles/thirdPartyId/<str:third_party_id>",
        profile_views.fetch_by_third_party_id,
        name="profile_fetch_by_third_party_id",
    ),
    path("rest/v1/profiles/<str:pc_id>", profile_views.fetch_by_pc_id, name="profile_fetch"),
    # Pages (docs/screen.md)
    path("", home.home, name="home"),
    path(
        "setup/<slug:client_code>/implementation/",
        implementation.implementation,
        name="implementation",
    ),
    path(
        "setup/<slug:client_code>/integrations/",
        integrations.integrations,
        name="integrations",
    ),
    # Bulk profile APIs (docs/api.md)
    path("m2/<str:client>/profile/batchUpdate", batch_views.batch_update_v1, name="batch_update"),
    path(
        "m2/<str:client>/v2/profile/batchUpdate",
        batch_views.batch_update_v2,
        name="batch_update_v2",
    ),
    path("m2/<str:client>/profile/batchStatus", batch_views.batch_status, name="batch_status"),
    path(
        "m2/<str:client>/v2/profile/batchStatus",
        batch_views.batch_status,
        name="batch_status_v2",
    ),
    path("api/v1/clients/<str:client>/profiles/bulk", batch_views.bulk, name="bulk"),
    path(
        "api/v1/clients/<str:client>/batches/<str:batch_id>",
        batch_views.bulk_batch,
        name="bulk_batch",
    ),
    path("api/openapi.json", batch_views.openapi, name="openapi"),
    # Token and settings management API (docs/management-api.md)
    # Any segment, not only a slug: a bad code gets the API's JSON answer, not an HTML 404.
    path("<str:client_code>/target/", include("profiles.api.management.urls")),
    # The read-only Profiles page
    path(
        "clients/<slug:client_code>/profiles/",
        profiles.profile_lookup,
        name="profile_lookup",
    ),
    # Batches pages
    path("clients/<slug:client_code>/batches/", batches.batches, name="client_batches"),
    path(
        "clients/<slug:client_code>/batches/<str:batch_id>/",
        batches.batch,
        name="client_batch",
    ),
    path(
        "clients/<slug:client_code>/batches/<str:batch_id>/failures.csv",
        batches.failures_csv,
        name="client_batch_failures",
    ),
]
