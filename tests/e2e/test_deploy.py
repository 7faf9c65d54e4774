"""Deploy in a real browser: export a finished run, start its server from the page, send it a
test sample, read the answer, stop the server."""

from __future__ import annotations

import functools

import pytest
from playwright.sync_api import expect

from core import runs
from core.serve import processes
from tests import polling
from tests.specs import TINY_MLP

pytestmark = pytest.mark.e2e

wait_for = functools.partial(polling.wait_for, every=0.5)


def test_export_then_call_the_server_from_the_deploy_page(browser_page, studio):
    config = {"seed": 0, "steps": 5, "batch_size": 32, "device": "cpu"}
    run_id = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=config)["run_id"]
    page = browser_page
    page.goto(f"{studio}/deploy?run={run_id}")
    page.get_by_role("button", name="Export ONNX").click()
    expect(page.get_by_role("button", name="Download model.onnx")).to_be_visible(timeout=180_000)

    page.get_by_text("torch", exact=True).click()
    page.get_by_role("button", name=f"Start a server for run {run_id}").click()
    try:
        view = wait_for(
            lambda: next(iter(processes.list_servers()), None),
            timeout=180,
            what="the run's server to be listed",
        )
        expect(page.get_by_text(view.url).first).to_be_visible(timeout=180_000)
        page.get_by_role("button", name="Send to the server").click()
        expect(page.get_by_text("The server says")).to_be_visible(timeout=120_000)
        page.get_by_role("button", name="Stop").click()
        wait_for(lambda: not processes.list_servers(), timeout=60, what="the server to stop")
    finally:
        for left in processes.list_servers():
            processes.stop_server(left.pid)
