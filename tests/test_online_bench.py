"""The online benchmark's own parts (``make bench``): its baseline, load generators and verdicts."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client as HttpClient
from django.urls import resolve

from bench import fixed_rate, online
from bench.online_views import BASELINE_PATH
from profiles.api import profile_views
from profiles.models import Client
from tests.profile_api import a_profile, issue_token, require_authentication

BENCH_URLS = "bench.online_urls"
FETCH_PATH = "/rest/v1/profiles/thirdPartyId/u-1?client=demo"


@pytest.fixture
def bench_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = BENCH_URLS


def port_of(live_server: Any) -> int:
    port = urlsplit(live_server.url).port
    assert port is not None
    return port


def test_the_product_has_no_baseline_view(client: HttpClient) -> None:
    assert client.get(BASELINE_PATH).status_code == 404


def test_the_baseline_answers_small_json_through_the_product_middleware(
    client: HttpClient, bench_urls: None
) -> None:
    response = client.get(BASELINE_PATH)
    assert response.status_code == 200
    assert response.json() == {"client": "bench", "status": "ok"}
    # The product's middleware ran: clickjacking protection sets this header.
    assert response["X-Frame-Options"] == "DENY"


def test_the_benchmark_urls_keep_every_product_url(bench_urls: None) -> None:
    assert (
        resolve("/rest/v1/profiles/thirdPartyId/u-1").func is profile_views.fetch_by_third_party_id
    )
    assert resolve("/m2/demo/profile/update").func is profile_views.update


def test_the_percentile_is_the_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert fixed_rate.percentile(ordered, 50) == 50.0
    assert fixed_rate.percentile(ordered, 99) == 99.0
    assert fixed_rate.percentile([7.0], 99) == 7.0
    assert fixed_rate.percentile([], 50) == 0.0


@pytest.mark.django_db(transaction=True)
def test_the_fixed_rate_generator_holds_the_rate_and_times_every_answer(
    live_server: Any, bench_urls: None
) -> None:
    tally = asyncio.run(
        fixed_rate.run(
            port_of(live_server),
            [BASELINE_PATH],
            rate=40,
            duration=0.5,
            connections=4,
            token=None,
        )
    )
    summary = tally.summary(40)
    assert summary["requests"] == 20
    assert summary["status_errors"] == summary["socket_errors"] == summary["timeouts"] == 0
    assert 0 < summary["p50_us"] <= summary["p99_us"] <= summary["max_us"]
    # 20 requests due over half a second: answered at about the rate asked for, not faster.
    assert 20 <= summary["achieved_rps"] <= 60


@pytest.mark.django_db(transaction=True)
def test_the_fixed_rate_generator_sends_the_token_and_counts_refusals(
    live_server: Any, demo: Client
) -> None:
    a_profile(demo)
    require_authentication(demo)
    token = issue_token(demo)
    port = port_of(live_server)
    # One connection: the test server shares one in-memory SQLite connection between its
    # request threads, so parallel database reads there could interleave.
    accepted = asyncio.run(
        fixed_rate.run(port, [FETCH_PATH], rate=20, duration=0.25, connections=1, token=token)
    )
    refused = asyncio.run(
        fixed_rate.run(port, [FETCH_PATH], rate=20, duration=0.25, connections=1, token=None)
    )
    assert accepted.status_errors == 0
    assert len(accepted.latencies) == 5
    assert refused.status_errors == 5


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs Debian's wrk (.ci/run installs it)")
@pytest.mark.django_db(transaction=True)
def test_the_wrk_script_cycles_the_paths_and_reports_refusals(
    live_server: Any, demo: Client, tmp_path: Path
) -> None:
    a_profile(demo)
    require_authentication(demo)
    token = issue_token(demo)
    paths = tmp_path / "paths.txt"
    paths.write_text(f"{FETCH_PATH}\n")
    port = port_of(live_server)
    wrk = shutil.which("wrk")
    assert wrk is not None
    # One connection, for the same reason as the fixed-rate test above.
    accepted = online.run_wrk(wrk, port, paths, token, seconds=1, connections=1)
    assert accepted.requests > 0
    assert accepted.errors == 0
    assert 0 < accepted.p50_ms <= accepted.p99_ms
    refused = online.run_wrk(wrk, port, paths, None, seconds=1, connections=1)
    assert refused.requests > 0
    assert refused.errors == refused.requests  # every one answered 401


def figures(rps: float, p99_ms: float = 5.0) -> online.Figures:
    return online.Figures(rps=rps, p50_ms=1.0, p99_ms=p99_ms, requests=int(rps), errors=0)


def test_the_verdicts_name_each_missed_target() -> None:
    rows = [
        online.Row("baseline", figures(1000), 1.0, figures(500)),
        online.Row("fetch, auth on", figures(850), 0.85, figures(425)),
        online.Row("update, auth on", figures(700), 0.70, figures(350, p99_ms=30.0)),
    ]
    costs = {
        "fetch": online.auth_cost(figures(880), figures(850)),
        "update": online.auth_cost(figures(800), figures(700)),
    }
    assert costs["fetch"] == pytest.approx(0.034, abs=0.001)
    missed = [line for line in online.verdicts(rows, costs) if line.startswith("MISSED")]
    assert missed == [
        "MISSED update, auth on: 0.70× baseline (target ≥ 0.8)",
        "MISSED authentication on the update: +12.5% (target ≤ 5%)",
        "MISSED update, auth on: p99 30.0 ms at half rate (target < 25 ms)",
    ]


def test_the_table_shows_each_case_against_the_baseline() -> None:
    rows = [
        online.Row("baseline", figures(1000), 1.0, figures(500)),
        online.Row("fetch, auth on", figures(850), 0.85, None),
    ]
    lines = online.table(rows, {"fetch": 0.02}).splitlines()
    assert lines[1].split()[:5] == ["baseline", "1000", "1.0", "5.0", "1.00"]
    assert lines[2].split()[-2:] == ["0.85", "0"]
    assert lines[-1] == "authentication costs +2.0% of the fetch's requests per second"


def test_the_medians_over_rounds_take_each_ratio_within_its_round() -> None:
    first = [online.Row("baseline", figures(1000), 1.0, None)]
    second = [online.Row("baseline", figures(600), 1.0, None)]
    third = [online.Row("baseline", figures(800), 1.0, None)]
    (merged,) = online.median_rows([first, second, third])
    assert merged.peak.rps == 800
    assert merged.ratio == 1.0
    assert merged.peak.requests == 2400
