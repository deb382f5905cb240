"""Static files: served by the application itself, compressed, cached for as long as possible."""

from __future__ import annotations

from pathlib import Path

from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client as HttpClient
from django.test import override_settings

from targetadmin import settings as project_settings


def test_it_serves_collected_files_compressed_and_cacheable_for_a_year(tmp_path: Path) -> None:
    # The suite serves static files uncollected (conftest); this test collects them as a
    # deployment does and serves them with the project's own storage.
    with override_settings(
        STATIC_ROOT=tmp_path, STORAGES=project_settings.STORAGES, WHITENOISE_AUTOREFRESH=False
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        url = staticfiles_storage.url("admin/css/base.css")
        assert url != "/static/admin/css/base.css"  # the name carries the content's hash

        response = HttpClient().get(url, HTTP_ACCEPT_ENCODING="gzip")

    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    cache_control = response["Cache-Control"]
    assert "immutable" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) >= 365 * 24 * 3600
