"""The shared report in a real Chromium with every network request blocked: it draws whole,
one section per class and the measured sentences, and it asks for nothing."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest

from core import runs
from core.report import run_report_html
from tests.e2e.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.specs import TINY_MLP

# a Content-Security-Policy refusal never reaches the network, so it is not a request: count
# those too, or a blocked fetch would pass unseen
WATCH_VIOLATIONS = (
    "window.violations = [];"
    "document.addEventListener('securitypolicyviolation', e => window.violations.push(e.blockedURI));"
)


def test_the_report_opens_offline_draws_every_section_and_requests_nothing(tmp_path):
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing: `make browser` installs Debian's Chromium"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    result = runs.train_run_foreground(
        spec=TINY_MLP, dataset="digits", config={"epochs": 1, "seed": 0, "device": "cpu"}
    )
    page_text, data = run_report_html(result["run_id"], samples=4)
    report = tmp_path / "report.html"
    report.write_text(page_text, encoding="utf-8")
    url = report.as_uri()
    figures = page_text.count("Plotly.newPlot(")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True)
        blocked: list[str] = []

        def abort(route) -> None:
            blocked.append(route.request.url)
            route.abort()

        context.route(lambda address: address != url, abort)  # everything but the file itself
        page = context.new_page()
        requested: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.add_init_script(WATCH_VIOLATIONS)
        try:
            page.goto(url)
            # every figure drawn by the inlined plotly.js
            page.wait_for_function(
                f"document.querySelectorAll('.figure .main-svg').length >= {figures}",
                timeout=60_000,
            )
            sections = page.locator("section.class h3").all_inner_texts()
            assert sections == [f"When it says “{n}”" for n in data.dataset.class_names]
            shown = page.locator(".example .sentence").all_inner_texts()
            assert shown == [e.sentence for e in data.examples] and len(shown) == 4
            assert page.get_by_text("Randomization check").is_visible()
            assert page.evaluate("window.violations") == []
        except BaseException:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "failed-report.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert [u for u in requested if u != url and not u.startswith(("data:", "blob:"))] == []
    assert blocked == [] and errors == []
    assert html.escape(data.title) in page_text
