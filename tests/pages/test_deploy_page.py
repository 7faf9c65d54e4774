"""Deploy page, through Streamlit's AppTest, on a real finished run: export and download, a
local server started and stopped from the page, examples with a real sample, try it."""

from __future__ import annotations

import json

import pytest

from app import state
from core import runs
from core.serve import processes
from tests.pages.conftest import open_app
from tests.specs import TINY_MLP

SERVER_WAIT_S = 180  # the server process imports torch and the studio before it answers


@pytest.fixture
def digits_run():
    config = {"seed": 0, "steps": 5, "batch_size": 32, "device": "cpu"}
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=config)
    assert result["status"] == "completed", result
    yield result["run_id"]
    for view in processes.list_servers():  # never leave a server behind a failed test
        processes.stop_server(view.pid)


def code_blocks(at) -> list[str]:
    return [block.value for block in at.code]


def test_no_finished_run_says_what_to_do():
    at = open_app("deploy")
    assert "No finished run yet" in at.info[0].value


def test_export_serve_try_and_stop_from_the_page(digits_run):
    at = open_app("deploy", query_params={"run": str(digits_run)})
    assert at.selectbox(key=state.DEPLOY_RUN).value == digits_run
    # examples with a real test sample of the run, ready to paste
    curl, python = code_blocks(at)[:2]
    assert "http://127.0.0.1:8000/predict" in curl and "/predict" in python
    body = json.loads(curl.split("-d '", 1)[1].rstrip("'"))
    (image,) = body["inputs"][0]  # (1, 8, 8): one channel of 8 rows of 0..16
    assert len(image) == 8 and max(max(row) for row in image) <= 16
    assert "Start a server for this run" in at.info[0].value

    at.button(key=state.deploy_export_key("onnx")).click().run(timeout=120)
    assert not at.exception, at.exception
    assert at.get("download_button"), "the ONNX file is offered for download"
    assert "largest difference" in " ".join(c.value for c in at.caption)

    at.radio(key=state.DEPLOY_RUNTIME).set_value("torch").run()
    at.button(key=state.DEPLOY_START).click().run(timeout=SERVER_WAIT_S)
    assert not at.exception, at.exception
    (view,) = processes.list_servers()
    assert view.run_id == digits_run and view.runtime == "torch"
    assert any(view.url in m.value for m in at.markdown), "listed with its address"
    assert view.url in code_blocks(at)[0]  # the examples now call the running server

    at.number_input(key=state.DEPLOY_INDEX).set_value(3).run()
    at.button(key=state.DEPLOY_SEND).click().run(timeout=120)
    assert not at.exception, at.exception
    headline = next(m.value for m in at.markdown if m.value.startswith("#### The server says"))
    assert "test sample \\#3" in headline or "test sample #3" in headline
    assert len(at.get("plotly_chart")) == 2  # the top classes and the explanation picture

    # a reload (a new session) still lists the server: it lives on its own
    again = open_app("deploy", query_params={"run": str(digits_run)})
    again.button(key=state.deploy_stop_key(view.pid)).click().run()
    assert not again.exception, again.exception
    assert processes.list_servers() == []
    assert not processes.is_alive(view.pid)
