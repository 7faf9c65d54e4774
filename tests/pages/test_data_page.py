"""Data page, through AppTest: previews, class balance, uploads checked on the server."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image

from app import state
from core.data import list_datasets
from tests.pages.conftest import open_app


def traces(chart) -> list[str]:
    """The trace types of a Plotly chart element, as the browser receives it."""
    return [trace.get("type", "scatter") for trace in json.loads(chart.proto.spec)["data"]]


def test_digits_shows_an_image_grid_class_balance_and_split_sizes():
    at = open_app("data")
    assert at.selectbox(key=state.DATA_CHOICE).value == "digits"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sample shape"] == "1×8×8" and metrics["Classes"] == "10"
    assert any("train" in c.value and "test" in c.value for c in at.caption)
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the image grid and the class balance
    assert traces(charts[0]) == ["image"]
    assert set(traces(charts[1])) == {"bar"}


def test_signals_are_plotted_for_mnist1d():
    at = open_app("data")
    at.selectbox(key=state.DATA_CHOICE).set_value("mnist1d").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Sample shape"] == "1×40"
    assert traces(at.get("plotly_chart")[0]) == ["scatter"] * 12


def test_a_csv_upload_is_checked_then_listed_and_previewed():
    rows = ["a,b,label"] + [f"{i % 7},{i % 5},{'yes' if i % 2 else 'no'}" for i in range(60)]
    at = open_app("data")
    at.radio(key=state.UPLOAD_KIND).set_value("csv").run()
    at.file_uploader(key=state.upload_file_key(0)).upload(
        "survey.csv", "\n".join(rows).encode(), "text/csv"
    )
    at.text_input(key=state.UPLOAD_NAME).set_value("survey")
    at.button(key="data.add").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Added “survey”" in s.value for s in at.success)
    assert "survey" in {info.name for info in list_datasets()}
    assert at.selectbox(key=state.DATA_CHOICE).value == "survey"
    assert {m.label: m.value for m in at.metric}["Kind"] == "tabular"
    assert at.dataframe  # the rows with their labels


def test_an_image_zip_upload_is_previewed_as_images():
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for label, shade in (("dark", 30), ("light", 220)):
            for i in range(12):
                picture = io.BytesIO()
                pixels = np.full((12, 12), shade + i, dtype=np.uint8)
                Image.fromarray(pixels).save(picture, format="PNG")
                zipped.writestr(f"shapes/{label}/{i}.png", picture.getvalue())
    at = open_app("data")
    at.radio(key=state.UPLOAD_KIND).set_value("images").run()
    at.file_uploader(key=state.upload_file_key(0)).upload(
        "shapes.zip", archive.getvalue(), "application/zip"
    )
    at.text_input(key=state.UPLOAD_NAME).set_value("shapes")
    at.button(key="data.add").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key=state.DATA_CHOICE).value == "shapes"
    assert traces(at.get("plotly_chart")[0]) == ["image"]


def test_a_refused_upload_is_a_message_not_a_traceback():
    at = open_app("data")
    at.radio(key=state.UPLOAD_KIND).set_value("csv").run()
    at.file_uploader(key=state.upload_file_key(0)).upload("empty.csv", b"", "text/csv")
    at.button(key="data.add").click().run()
    assert not at.exception
    assert at.error and at.error[0].value.replace("\\", "").startswith("Upload refused:")
    assert at.selectbox(key=state.DATA_CHOICE).value == "digits"


def test_an_upload_can_be_removed():
    rows = ["x,label"] + [f"{i},{i % 2}" for i in range(40)]
    at = open_app("data")
    at.radio(key=state.UPLOAD_KIND).set_value("csv").run()
    at.file_uploader(key=state.upload_file_key(0)).upload(
        "tiny.csv", "\n".join(rows).encode(), "text/csv"
    )
    at.text_input(key=state.UPLOAD_NAME).set_value("tiny")
    at.button(key="data.add").click().run()
    at.button(key="data.remove").click().run()
    assert "tiny" not in {info.name for info in list_datasets()}
    assert any("Removed" in s.value for s in at.success)


def test_after_an_upload_the_form_is_clean_so_the_next_one_is_not_a_duplicate():
    def table(offset: int) -> bytes:
        return "\n".join(["x,label"] + [f"{i + offset},{i % 2}" for i in range(40)]).encode()

    at = open_app("data")
    at.radio(key=state.UPLOAD_KIND).set_value("csv").run()
    at.file_uploader(key=state.upload_file_key(0)).upload("first.csv", table(0), "text/csv")
    at.text_input(key=state.UPLOAD_NAME).set_value("first")
    at.button(key="data.add").click().run()
    assert any("Added “first”" in s.value for s in at.success)
    assert at.text_input(key=state.UPLOAD_NAME).value == ""  # not the previous upload's name
    assert at.file_uploader(key=state.upload_file_key(1)).value is None  # an empty file box
    at.file_uploader(key=state.upload_file_key(1)).upload("second.csv", table(5), "text/csv")
    at.button(key="data.add").click().run()
    assert not at.error, [e.value for e in at.error]
    assert {"first", "second"} <= {info.name for info in list_datasets()}
    assert at.selectbox(key=state.DATA_CHOICE).value == "second"
