"""The Build page as a new user walks it, in a real browser: wiring a merge block (whose
option labels change as blocks get ids), and an Input dataset that survives a page switch and
a reload. Both broke only in the browser, which remembers a choice by the label it showed."""

from __future__ import annotations

import functools
import re

import pytest

from tests import polling

pytestmark = pytest.mark.e2e

wait_for = functools.partial(polling.wait_for, every=0.3)
CRASH = "This app has encountered an error"


def open_build(page, url: str) -> None:
    page.goto(url)
    page.get_by_text("Build a model").wait_for()


def add_blocks(page, *layer_types: str) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    for layer in layer_types:
        count = len(card_titles(page))
        sidebar.get_by_role("button", name=layer, exact=True).click()
        wait_for(lambda c=count: len(card_titles(page)) == c + 1, timeout=30, what=f"{layer} added")


def card_titles(page) -> list[str]:
    """'0. Conv2d', '1. ReLU', ... as the block cards show them."""
    texts = page.locator("[data-testid='stMarkdownContainer'] strong").all_inner_texts()
    return [t for t in texts if re.fullmatch(r"\d+\. \w+", t)]


def no_crash(page) -> None:
    assert page.get_by_text(CRASH).count() == 0, "the page crashed"
    assert page.get_by_test_id("stException").count() == 0, "the page shows a traceback"


def pick_input(page, option: str) -> None:
    """Choose `option` in the one visible "takes input from" box."""
    box = page.get_by_test_id("stMultiSelect").filter(visible=True)
    # while Streamlit reruns, the box it is replacing may still be on the page beside the new one
    wait_for(lambda: box.count() == 1, timeout=30, what="one 'takes input from' box")
    box.locator("input").click()
    page.keyboard.press("ArrowDown")  # opens the list (a click near the page end may not)
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def test_wiring_an_add_block_to_two_earlier_blocks_then_editing_on(browser_page, studio):
    page = browser_page
    open_build(page, studio)
    page.get_by_test_id("stSidebar").get_by_text("Common", exact=True).click()
    add_blocks(page, "Conv2d", "ReLU", "Conv2d", "Add")
    page.get_by_text(re.compile(r"Add sums two or more inputs")).first.wait_for()

    pick_input(page, "1. ReLU")  # the ReLU gets the id relu1: its option is renamed
    page.locator("code").get_by_text("relu1", exact=True).first.wait_for()
    pick_input(page, "2. Conv2d")
    # digits 8x8: the unpadded second Conv2d shrinks to 4x4; the message says why, in words
    said = page.get_by_text(re.compile(rf"cannot add .*padding|{CRASH}"))
    said.first.wait_for()
    no_crash(page)
    page.get_by_text("2. Conv2d (conv1)").first.wait_for()

    page.reload()
    page.get_by_text("2. Conv2d (conv1)").first.wait_for()
    page.get_by_test_id("stSidebar").get_by_text("Common", exact=True).click()
    add_blocks(page, "Flatten")  # the next edit anywhere after the reload
    wait_for(lambda: "4. Flatten" in card_titles(page), timeout=30, what="the edit kept")
    no_crash(page)
    # and the merge still names both of its inputs
    page.get_by_text("1. ReLU (relu1)").first.wait_for()
    page.get_by_text("2. Conv2d (conv1)").first.wait_for()


def input_box_text(page) -> str:
    """What the Input box shows (its text, or the value of its search field)."""
    box = page.get_by_test_id("stSelectbox").filter(has_text="Input").first
    fields = box.locator("input")
    shown = [fields.nth(i).input_value() for i in range(fields.count())]
    return " ".join([box.inner_text(), *shown])


def test_the_input_dataset_survives_a_page_switch_and_a_reload(browser_page, studio):
    page = browser_page
    open_build(page, studio)
    page.get_by_test_id("stSelectbox").filter(has_text="Input").first.click()
    page.get_by_role("option", name=re.compile(r"^mnist1d")).click()
    wait_for(lambda: "mnist1d" in input_box_text(page), timeout=30, what="mnist1d chosen")
    page.get_by_test_id("stSidebar").get_by_text("Common", exact=True).click()
    add_blocks(page, "Flatten", "Linear")
    page.get_by_text("The model builds: every shape fits.").wait_for()

    page.get_by_role("link", name="Train").click()
    page.get_by_text("What to train").wait_for()
    page.get_by_role("link", name="Build").click()
    page.get_by_text("Build a model").wait_for()
    wait_for(lambda: "mnist1d" in input_box_text(page), timeout=30, what="mnist1d after Train")
    page.get_by_text("The model builds: every shape fits.").wait_for()
    wait_for(lambda: "draft=" in page.url, timeout=30, what="the draft in the address bar")

    page.reload()
    page.get_by_text("Build a model").wait_for()
    wait_for(lambda: "mnist1d" in input_box_text(page), timeout=30, what="mnist1d after reload")
    page.get_by_text("The model builds: every shape fits.").wait_for()
    assert card_titles(page) == ["0. Flatten", "1. Linear"]
    no_crash(page)
