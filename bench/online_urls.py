"""The product's URLs plus the benchmark's baseline view (``bench.online_settings``)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path

from bench import online_views

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        online_views.BASELINE_PATH.removeprefix("/"), online_views.baseline, name="bench_baseline"
    ),
    path("", include("targetadmin.urls")),
]
