"""End to end in a real browser: build a CNN from the palette, train it on digits while the loss
curve fills in, reload mid-run, open the finished run's confusion matrix, and ask it why it got a
digit wrong."""

from __future__ import annotations

import functools
import re

import pytest

from tests import polling
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

POINTS = re.compile(r"train loss ([\d,]+)")


wait_for = functools.partial(polling.wait_for, every=0.5)  # a page reload is slow


def address(page) -> str:
    return page.evaluate("window.location.href")


def shoot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def loss_points(page) -> int:
    """Training-loss points recorded so far, as the page says under the curves."""
    captions = page.get_by_text("Points recorded:").all_inner_texts()
    match = POINTS.search(" ".join(captions))
    return int(match.group(1).replace(",", "")) if match else 0


def chart_points(page) -> int:
    """Points in the drawn train-loss trace (Plotly's own data in the browser)."""
    return page.evaluate(
        """() => {
        for (const plot of document.querySelectorAll('.js-plotly-plot')) {
            for (const trace of plot._fullData || []) {
                if (trace.name === 'train loss') return trace._length || 0;
            }
        }
        return 0;
    }"""
    )


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_for(lambda: box.input_value() == str(value), timeout=30, what=f"{label} = {value}")


def test_build_train_watch_reload_read_the_confusion_matrix_and_explain(browser_page, studio):
    page = browser_page
    page.goto(studio)
    page.get_by_text("Build a model").wait_for()

    # build a small CNN from the palette
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Common", exact=True).click()
    for index, layer in enumerate(["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]):
        sidebar.get_by_role("button", name=layer, exact=True).click()
        # its card (and its node on the canvas, which carries the same title)
        page.get_by_role("strong").get_by_text(f"{index}. {layer}", exact=True).wait_for()
    page.get_by_text("The model builds: every shape fits.").wait_for()
    page.get_by_text("output 10").first.wait_for()
    shoot(page, "1-build")

    # train it on digits: 8 epochs of batch 16, a loss point every 5 steps
    page.get_by_role("link", name="Train").click()
    page.get_by_text("What to train").wait_for()
    page.get_by_text("The model fits digits").wait_for()
    set_number(page, "epochs", 8)
    set_number(page, "batch size", 16)
    page.get_by_text("Advanced settings").click()
    set_number(page, "log every", 5)
    page.get_by_role("button", name="Launch training").click()
    wait_for(lambda: "run=1" in address(page), timeout=30, what="the run id in the address")
    page.get_by_text("Run 1").first.wait_for()

    # pause it at once, whatever the machine's speed, so the reload surely lands mid-run
    page.get_by_role("button", name="Pause").click()
    page.get_by_text("paused", exact=True).wait_for(timeout=120_000)
    before = loss_points(page)
    page.reload()
    page.get_by_text("Run 1").first.wait_for()
    assert "run=1" in address(page)
    page.get_by_text("paused", exact=True).wait_for()
    assert loss_points(page) == before  # the curve so far comes back from the database
    shoot(page, "2-paused-after-reload")

    # resume: the reloaded page is live, the curve gains points while the run trains
    page.get_by_role("button", name="Resume").click()
    seen = {before}  # distinct point counts the page has shown

    def gained_twice() -> bool:
        seen.add(loss_points(page))
        return len(seen) >= 3

    wait_for(gained_twice, timeout=180, what="the curve to gain points twice", every=0.4)
    assert chart_points(page) >= 2
    shoot(page, "3-training-live")

    # the finished run's confusion matrix
    wait_for(
        lambda: page.get_by_text("Test accuracy").count() > 0,
        timeout=150,
        what="the run to complete",
        every=1.0,
    )
    shoot(page, "4-completed")
    page.get_by_text("Confusion matrix and comparisons on the Runs page").click()
    page.get_by_text("Confusion matrix (test split)").wait_for()
    page.get_by_text("Accuracy per class (test split)").wait_for()
    page.set_viewport_size({"width": 1440, "height": 1900})  # the whole page in one picture
    page.get_by_text("Accuracy per class (test split)").wait_for()
    shoot(page, "5-runs")

    # why did it say that? one of its mistakes, one sentence, the pictures
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_role("link", name="Explain its predictions").click()
    wait_for(lambda: "explain" in address(page), timeout=30, what="the Explain page")
    assert "run=1" in address(page)
    page.get_by_text("Explaining test sample #0.").wait_for()
    page.get_by_text("Only the ones it got wrong").click()
    summary = page.get_by_text(re.compile(r"it is actually|gets every test sample right"))
    summary.first.wait_for()
    if "it is actually" in summary.first.inner_text():
        assert summary.first.inner_text().startswith("The model")
        wait_for(
            lambda: page.locator(".js-plotly-plot .heatmaplayer").count() >= 1,
            timeout=30,
            what="a heatmap over the digit",
        )
    page.set_viewport_size({"width": 1440, "height": 1700})
    page.get_by_text("Red marks what pushed the model").wait_for()
    shoot(page, "6-explain")
