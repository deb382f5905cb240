"""The online benchmark's own parts (``make bench``): its baseline, load generators and verdicts."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client as HttpClient

from bench import baseline, fixed_rate, hello_wsgi, loopback, online
from bench.baseline import BASELINE_PATH
from profiles.models import Client
from tests.profile_api import a_profile, issue_token, require_authentication

FETCH_PATH = "/rest/v1/profiles/thirdPartyId/u-1?client=demo"


@pytest.fixture
def bench_urls(settings: Any) -> None:
    settings.ROOT_URLCONF = "bench.baseline"


def port_of(live_server: Any) -> int:
    port = urlsplit(live_server.url).port
    assert port is not None
    return port


def test_the_product_has_no_baseline_view(client: HttpClient) -> None:
    assert client.get(BASELINE_PATH).status_code == 404


def test_the_baseline_is_a_bare_django_project() -> None:
    assert baseline.MIDDLEWARE == []
    assert baseline.INSTALLED_APPS == []
    assert baseline.DATABASES == {}


def test_the_baseline_and_the_product_run_under_make_runs_gunicorn_settings() -> None:
    # bin/run's default, not gunicorn.conf.py's own 2 per core + 1.
    assert online.make_run_default("WEB_CONCURRENCY") == "2"
    assert online.baseline_environment()["WEB_CONCURRENCY"] == "2"
    product = online.product_environment(Path("/nowhere"), "sqlite:////nowhere/db.sqlite3")
    assert product["WEB_CONCURRENCY"] == "2"
    assert online.gunicorn_settings(product).startswith("2 workers × 4 threads (")


def test_the_baseline_answers_small_json_under_the_products_gunicorn(tmp_path: Path) -> None:
    port = loopback.free_port()
    env = online.baseline_environment()
    url = f"http://127.0.0.1:{port}{BASELINE_PATH}"
    with (
        online.gunicorn(env, port, "bench.baseline_wsgi", BASELINE_PATH, tmp_path / "log"),
        urllib.request.urlopen(url) as response,
    ):
        assert json.loads(response.read()) == {"client": "bench", "status": "ok"}
        # No middleware at all: not even the security headers every product answer has.
        assert response.headers["X-Content-Type-Options"] is None


@pytest.mark.parametrize("application", ["bench.baseline_wsgi", "bench.hello_wsgi"])
def test_the_servers_limit_answers_the_same_body_as_the_bare_django_view(
    tmp_path: Path, application: str
) -> None:
    port = online.free_port()
    env = online.baseline_environment()
    url = f"http://127.0.0.1:{port}{BASELINE_PATH}"
    with (
        online.gunicorn(env, port, application, BASELINE_PATH, tmp_path / "log"),
        urllib.request.urlopen(url) as response,
    ):
        assert response.read() == hello_wsgi.BODY


def test_the_table_shows_each_case_against_the_servers_limit() -> None:
    rows = [
        online.Row(online.HELLO, figures(4000), 2.0, None),
        online.Row("baseline", figures(2000), 1.0, None),
        online.Row("fetch, auth on", figures(1000), 0.5, None),
    ]
    lines = online.table(rows, {}).splitlines()
    assert lines[-1] == "× raw WSGI hello (the server's limit): baseline 0.50, fetch, auth on 0.25"


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
        online.Row(online.BASELINE, figures(1000), 1.0, figures(500)),
        online.Row(online.FETCH_ON, figures(650), 0.65, figures(325)),
        online.Row(online.UPDATE_ON, figures(400, p99_ms=120.0), 0.40, figures(200, 30.0)),
    ]
    costs = {
        "fetch": online.auth_cost(figures(680), figures(650)),
        "update": online.auth_cost(figures(500), figures(400)),
    }
    assert costs["fetch"] == pytest.approx(0.044, abs=0.001)
    batch = online.BatchFigures(500_000, 16.0, 17.0, figures(200, p99_ms=80.0), overlapped=True)
    missed = [line for line in online.verdicts(rows, costs, batch) if line.startswith("MISSED")]
    assert missed == [
        "MISSED fetch, auth on: 0.65× baseline (target ≥ 1.0)",
        "MISSED update, auth on: 0.40× baseline (target ≥ 0.5)",
        "MISSED update, auth on: p99 120.0 ms at full load (target < 100 ms)",
        "MISSED update, auth on: p99 30.0 ms at half rate (target < 25 ms)",
    ]


def test_postgresql_is_held_to_its_own_ratios() -> None:
    rows = [
        online.Row(online.FETCH_ON, figures(650), 0.65, None),
        online.Row(online.UPDATE_ON, figures(400), 0.29, None),
    ]
    ratios = [
        line
        for line in online.verdicts(rows, {"fetch": 0.0}, None, "postgresql")
        if "baseline" in line
    ]
    assert ratios == [
        "met    fetch, auth on: 0.65× baseline (target ≥ 0.6)",
        "MISSED update, auth on: 0.29× baseline (target ≥ 0.3)",
    ]


def test_updates_during_a_batch_count_only_while_it_is_being_applied() -> None:
    rows = [
        online.Row(online.FETCH_ON, figures(650), 0.65, None),
        online.Row(online.UPDATE_ON, figures(400), 0.55, None),
    ]
    batch = online.BatchFigures(500_000, 16.0, 17.0, figures(200, p99_ms=80.0), overlapped=False)
    (line,) = [line for line in online.verdicts(rows, {"fetch": 0.0}, batch) if "batch" in line]
    assert line.startswith("MISSED")


def test_the_table_shows_each_case_against_the_baseline() -> None:
    rows = [
        online.Row("baseline", figures(1000), 1.0, figures(500)),
        online.Row("fetch, auth on", figures(850), 0.85, None),
    ]
    lines = online.table(rows, {"fetch": 0.02}).splitlines()
    assert lines[1].split()[:5] == ["baseline", "1000", "1.0", "5.0", "1.00"]
    assert lines[2].split()[-3:] == ["0.85", "0", "0"]
    assert lines[-1] == "authentication costs +2.0% of the fetch's requests per second"


def test_metrics_are_also_held_to_three_percent_of_the_cpu_per_request() -> None:
    def measured(case: str, cpu_us: float) -> online.Row:
        return online.Row(case, replace(figures(1000), cpu_us=cpu_us), 1.0, None)

    rows = [
        measured(online.FETCH_ON, 500.0),
        measured(online.UPDATE_ON, 1000.0),
        measured(f"{online.FETCH_ON}{online.UNMETERED}", 500.0),
        measured(f"{online.FETCH_ON}{online.METERED}", 510.0),
        measured(f"{online.UPDATE_ON}{online.UNMETERED}", 1000.0),
        measured(f"{online.UPDATE_ON}{online.METERED}", 1040.0),
    ]

    lines = online.verdicts(rows, {}, None, "sqlite", {})
    table = online.table(rows, {}).splitlines()

    assert "met    metrics on the fetch's CPU per request: +2.0% (target ≤ 3%)" in lines
    assert "MISSED metrics on the update's CPU per request: +4.0% (target ≤ 3%)" in lines
    assert table[-1] == "metrics cost +4.0% of the update's CPU per request (auth on)"


def test_the_medians_find_each_case_by_name_whatever_the_order() -> None:
    first = [online.Row("a", figures(100), 1.0, None), online.Row("b", figures(300), 1.0, None)]
    second = [online.Row("b", figures(500), 1.0, None), online.Row("a", figures(200), 1.0, None)]

    merged = {row.case: row.peak.rps for row in online.median_rows([first, second])}

    assert merged == {"a": 150, "b": 400}


def test_the_medians_over_rounds_take_each_ratio_within_its_round() -> None:
    first = [online.Row("baseline", figures(1000), 1.0, None)]
    second = [online.Row("baseline", figures(600), 1.0, None)]
    third = [online.Row("baseline", figures(800), 1.0, None)]
    (merged,) = online.median_rows([first, second, third])
    assert merged.peak.rps == 800
    assert merged.ratio == 1.0
    assert merged.peak.requests == 2400


def test_metrics_are_off_in_the_product_unless_the_run_turns_them_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "a-token-of-the-shell-the-bench-runs-in-" + "x" * 8)
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8")
    off = online.product_environment(Path("/nowhere"), "sqlite:////nowhere/db.sqlite3")

    assert not {"METRICS_TOKEN", "METRICS_ALLOWED_NETWORKS"} & set(off)
    assert online.metrics_environment(off)["METRICS_TOKEN"] == online.METRICS_TOKEN
    assert len(online.METRICS_TOKEN) >= 32


def test_the_metered_cases_are_the_authenticated_hot_calls_again() -> None:
    cases = online.product_cases(["u-1"])
    fetch_on = next(case for case in cases if case.name == online.FETCH_ON)

    again = online.metered(fetch_on)

    assert again.name == "fetch, auth on, metrics on"
    assert (again.paths, again.token) == (fetch_on.paths, online.CLIENT_TOKEN)


def test_the_verdicts_hold_counting_to_three_percent_of_the_hot_calls() -> None:
    rows = [
        online.Row(online.FETCH_ON, figures(1000), 1.0, None),
        online.Row(online.UPDATE_ON, figures(500), 0.5, None),
    ]
    metrics_costs = {
        "fetch": online.auth_cost(figures(1000), figures(975)),
        "update": online.auth_cost(figures(500), figures(480)),
    }

    lines = online.verdicts(rows, {"fetch": 0.0}, None, "sqlite", metrics_costs)
    table = online.table(rows, {}, metrics_costs).splitlines()

    assert "met    metrics on the fetch: +2.5% (target ≤ 3%)" in lines
    assert "MISSED metrics on the update: +4.0% (target ≤ 3%)" in lines
    assert table[-1] == "metrics cost +4.0% of the update's requests per second (auth on)"


def test_the_fetch_with_an_integration_token_is_held_to_the_same_budget() -> None:
    rows = [
        online.Row(online.FETCH_ON, figures(650), 1.1, None),
        online.Row(online.UPDATE_ON, figures(400), 0.55, None),
    ]
    costs = {
        "fetch": online.auth_cost(figures(1000), figures(980)),
        "fetch with an integration token": online.auth_cost(figures(1000), figures(930)),
    }

    lines = online.verdicts(rows, costs)

    assert "met    authentication on the fetch: +2.0% (target ≤ 5%)" in lines
    assert "MISSED authentication on the fetch with an integration token: +7.0% (target ≤ 5%)" in (
        lines
    )


def test_the_integration_tokens_fetch_sends_the_integration_token() -> None:
    cases = {case.name: case for case in online.product_cases(["visitor-1"])}

    assert cases[online.FETCH_INTEGRATION].token == online.INTEGRATION_TOKEN
    assert cases[online.FETCH_INTEGRATION].paths == cases[online.FETCH_ON].paths
    assert cases[online.FETCH_ON].token == online.CLIENT_TOKEN
    assert cases[online.FETCH_OFF].token == ""


def test_the_fetch_with_either_token_swaps_places_every_other_round() -> None:
    cases = online.product_cases(["visitor-1"])
    names = [case.name for case in cases]

    odd = [case.name for case in online.in_order_of(1, cases)]
    even = [case.name for case in online.in_order_of(2, cases)]

    assert odd == names
    assert even.index(online.FETCH_INTEGRATION) == names.index(online.FETCH_ON)
    assert even.index(online.FETCH_ON) == names.index(online.FETCH_INTEGRATION)
    assert sorted(even) == sorted(names)


def test_the_metrics_twins_are_the_same_case_with_metrics_off_and_on() -> None:
    fetch_on = next(c for c in online.product_cases(["u-1"]) if c.name == online.FETCH_ON)

    off, on = online.metered(fetch_on, online.UNMETERED), online.metered(fetch_on)

    assert (off.name, on.name) == ("fetch, auth on, metrics off", "fetch, auth on, metrics on")
    assert off.paths == on.paths == fetch_on.paths
    assert off.token == on.token == fetch_on.token


def test_a_rounds_costs_fit_on_one_line() -> None:
    line = online.costs_line({"fetch": 0.05}, {"fetch": 0.012})

    assert line == "authentication +5.0% on the fetch; metrics +1.2% on the fetch"
