"""Real-browser journeys: Debian's Chromium, driven by Playwright, against Django's live
server. One browser serves them all; each test gets fresh contexts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    APIRequestContext,
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from pytest_django.live_server_helper import LiveServer

from tests.support import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Playwright adds --headless itself unless pytest runs with --headed.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}

# Each journey clicks through several pages; a slow shared machine needs more than the
# default five seconds now and then, a working page never does.
expect.set_options(timeout=15_000)


# Playwright's sync API runs an event loop in the test thread while it is started. So it
# lives only as long as this package's tests (pytest-playwright's own fixtures would keep it
# for the whole session, where other tests call asyncio.run), and meanwhile Django is told
# that the database calls made by these tests do not come from async code.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as started:
            yield started


@pytest.fixture(scope="package")
def browser(playwright: Playwright, browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    """Debian's Chromium, one for all the journeys: Playwright never downloads a browser.
    pytest-playwright's launch options (--headed, --slowmo) still apply."""
    launched = playwright.chromium.launch(
        **browser_type_launch_args, executable_path=CHROMIUM, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    # Reduced motion: Bootstrap then shows and hides its dialog at once, so a click never
    # lands on one still fading in.
    return {"viewport": WIDE, "locale": "en-US", "reduced_motion": "reduce"}


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder, or SCREENSHOT_DIR (``make screenshots`` points it at docs/)."""
    chosen = os.environ.get("SCREENSHOT_DIR")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(chosen)
    path.mkdir(parents=True, exist_ok=True)
    return path


Screenshot = Callable[[Page, str], Path]
CreateContext = Callable[..., BrowserContext]


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Screenshot:
    def take(page: Page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
        assert path.read_bytes().startswith(b"\x89PNG")
        return path

    return take


@pytest.fixture
def api(playwright: Playwright, live_server: LiveServer) -> Iterator[APIRequestContext]:
    """A script's HTTP client, outside the browser: no cookies, no session."""
    context = playwright.request.new_context(base_url=live_server.url)
    yield context
    context.dispose()


def sign_in(page: Page, live_server: LiveServer, username: str, path: str = "/") -> None:
    """Open ``path`` signed out, and sign in on the page it leads to."""
    page.goto(live_server.url + path)
    expect(page.get_by_role("heading", name="Sign in to targetadmin")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
