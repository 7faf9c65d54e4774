"""Journeys a new user walked in a real browser (issue 16), each kept short: the Train form that
survives a page switch and a reload, and the upload panel that stays open and starts clean."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from core import runs
from core.data import list_datasets
from tests import polling

pytestmark = pytest.mark.e2e

wait_for = functools.partial(polling.wait_for, every=0.5)

SPEC = {
    "name": "tiny-mlp",
    "layers": [
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 16},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}


def selected(page, label: str) -> str:
    """The option shown in the select box labelled `label`."""
    return page.get_by_role("combobox", name=label, exact=True).input_value()


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label`. A click that lands while Streamlit
    reruns for the previous change can leave the box focused but closed: open it again."""
    box = page.get_by_role("combobox", name=label, exact=True)
    wanted = page.get_by_role("option", name=option, exact=True)
    for _ in range(6):
        box.click()
        try:
            wanted.wait_for(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    wanted.click()
    wait_for(lambda: selected(page, label) == option, timeout=30, what=f"{label} = {option}")


def set_number(page, label: str, value: str) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for(
        lambda: float(box.input_value() or "nan") == float(value),
        timeout=30,
        what=f"{label} = {value}",
    )


def number(page, label: str) -> str:
    return page.get_by_role("spinbutton", name=label, exact=True).input_value()


def settled(page) -> None:
    """Wait until Streamlit has finished the rerun of the last change (idle for two polls), as
    a person does before moving on: a page switch within the same instant can still drop the
    last change (noted in the README)."""
    status = page.get_by_test_id("stStatusWidget")
    idle = [0]

    def quiet() -> bool:
        idle[0] = 0 if status.is_visible() else idle[0] + 1
        return idle[0] >= 2

    wait_for(quiet, timeout=30, what="the app to finish its rerun")


def test_train_settings_survive_a_page_switch_and_a_reload(browser_page, studio):
    runs.save_spec(name="tiny-mlp", spec=SPEC)  # a saved model, so Train has something to train
    page = browser_page
    page.goto(f"{studio}/train")
    page.get_by_text("The model fits digits").wait_for()
    choose(page, "optimizer", "sgd")
    set_number(page, "lr", "0.05")
    set_number(page, "epochs", "3")
    choose(page, "scheduler", "cosine")
    settled(page)

    page.get_by_role("link", name="Data").click()
    page.get_by_text("Choose a dataset to look at").wait_for()
    page.get_by_role("link", name="Train").click()
    page.get_by_text("The model fits digits").wait_for()
    assert selected(page, "optimizer") == "sgd" and selected(page, "scheduler") == "cosine"
    assert number(page, "epochs") == "3" and float(number(page, "lr")) == 0.05

    page.reload()
    page.get_by_text("The model fits digits").wait_for()
    wait_for(lambda: number(page, "epochs") == "3", timeout=30, what="epochs after a reload")
    assert selected(page, "optimizer") == "sgd" and float(number(page, "lr")) == 0.05
    # no run on screen, and the box above it claims none
    page.get_by_text("Launch a run to watch it here").wait_for()


def choose_kind(page, label: str) -> None:
    """Click an upload kind once the page has settled: while Streamlit reruns, the radio it is
    replacing may still be on the page beside the new one."""
    option = page.get_by_test_id("stRadioGroup").get_by_text(label, exact=True)
    expect(option).to_have_count(1, timeout=30_000)
    option.click()


def click_until_shown(page, button, text: str, *, timeout: float = 90.0) -> None:
    """Click `button` until `text` shows. A click that lands while Streamlit reruns for the
    previous change (a name committed with Enter) can be dropped by the browser: click again
    only once the app is idle and the text has still not come."""
    shown = page.get_by_text(text)
    status = page.get_by_test_id("stStatusWidget")
    idle_polls = [0]

    def arrived() -> bool:
        if shown.is_visible():
            return True
        idle_polls[0] = 0 if status.is_visible() else idle_polls[0] + 1
        if idle_polls[0] >= 2:  # idle for two polls in a row and nothing came: the click was lost
            idle_polls[0] = 0
            button.click()
        return False

    button.click()
    wait_for(arrived, timeout=timeout, every=2.0, what=f"{text!r} after clicking")


def test_the_upload_panel_stays_open_and_starts_clean_after_an_upload(
    browser_page, studio, tmp_path: Path
):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    for offset, path in ((0, first), (5, second)):
        path.write_text("\n".join(["x,label"] + [f"{i + offset},{i % 2}" for i in range(40)]))
    page = browser_page
    page.goto(f"{studio}/data")
    page.get_by_text("Upload a dataset").click()
    add = page.get_by_role("button", name="Add dataset")
    add.wait_for()
    choose_kind(page, "Table (CSV)")
    page.locator("input[type=file]").set_input_files(str(first))
    page.get_by_text("first.csv").wait_for()
    name = page.get_by_role("textbox", name="Name")
    name.fill("first")
    name.press("Enter")
    click_until_shown(page, add, "Added “first”")

    # a change inside the panel after the upload: the panel stays open, the form is clean
    choose_kind(page, "Text (CSV)")
    page.get_by_text("One row per sample: a text column").wait_for()
    choose_kind(page, "Table (CSV)")
    page.get_by_text("One row per sample; a label column").wait_for()
    assert add.is_visible() and name.input_value() == ""
    page.locator("input[type=file]").set_input_files(str(second))
    page.get_by_text("second.csv").wait_for()
    click_until_shown(page, add, "Added “second”")
    assert {"first", "second"} <= {info.name for info in list_datasets()}
