"""Served answers equal the studio's for raw samples of every dataset kind; bad requests are
refused with the field named; limits and the API key hold; /explain is `studio explain --json`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from core.explain import explain
from core.serve.server import create_studio_app, load_torch_model
from tests.core.serve.conftest import CASES, Served


def client_for(served: Served, **settings: str) -> TestClient:
    return TestClient(create_studio_app(served.folder, runtime=served.runtime))


def softmax(outputs: np.ndarray) -> np.ndarray:
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("kind", list(CASES))
def test_served_predictions_equal_the_studios_for_raw_test_samples(kind, served):
    run = served[kind]
    client = client_for(run)
    # the preprocessing is the studio's, to the bit
    prepared = client.app.state.preprocessor.batch(run.raw, max_samples=len(run.raw))
    assert prepared.dtype == run.normalized.dtype
    assert np.array_equal(prepared, run.normalized)

    response = client.post("/predict", json={"inputs": run.raw})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == len(run.raw)
    contract = client.get("/metadata").json()
    if contract["task"] == "regression":
        mean, std = contract["output"]["mean"], contract["output"]["std"]
        expected = run.outputs[:, 0] * std + mean
        served_values = np.array([p["value"] for p in predictions])
        np.testing.assert_allclose(served_values, expected, rtol=1e-5, atol=1e-4)
        return
    probabilities = softmax(run.outputs.astype(np.float64))
    names = contract["class_names"]
    for answer, row in zip(predictions, probabilities, strict=True):
        assert answer["index"] == int(row.argmax())
        assert answer["label"] == names[answer["index"]]
        assert len(answer["probabilities"]) == min(3, len(names))
        for label, p in answer["probabilities"].items():
            assert p == pytest.approx(row[names.index(label)], abs=1e-5)


def test_metadata_states_the_input_and_classes(served):
    digits = client_for(served["digits"]).get("/metadata").json()
    assert digits["input"]["kind"] == "image" and digits["input"]["shape"] == [1, 8, 8]
    assert digits["input"]["raw_max"] == 16  # digits count ink 0..16: said, not guessed
    assert digits["class_names"] == [str(d) for d in range(10)]
    assert digits["run_id"] == served["digits"].run_id and digits["runtime"] == "onnx"
    table = client_for(served["table"]).get("/metadata").json()
    assert table["input"]["columns"] == ["height cm", "weight", "age"]
    text = client_for(served["text"]).get("/metadata").json()
    assert text["input"]["dtype"] == "int64" and text["input"]["max_length"] == 6
    assert text["input"]["vocab_size"] > 2 and "vocabulary" not in text["input"]
    assert client_for(served["digits"]).get("/health").json() == {"status": "ok"}


def test_an_image_file_is_read_as_the_studio_read_the_upload(served):
    run = served["images"]
    client = client_for(run)
    for data, expected in zip(run.files[:3], run.normalized[:3], strict=True):
        assert np.array_equal(client.app.state.preprocessor.image_file(data), expected)
    response = client.post("/predict", files={"file": ("one.png", run.files[0], "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"][0]["index"] == int(run.outputs[0].argmax())
    fields = {"method": "saliency", "sanity_check": "false"}
    why = client.post("/explain", files={"file": ("one.png", run.files[0])}, data=fields)
    assert why.status_code == 200, why.text
    assert np.asarray(why.json()["attribution"]).shape == (3, 8, 8)


def test_a_digit_drawn_as_a_png_is_scaled_to_the_datasets_0_to_16(served):
    client = client_for(served["digits"])
    ink = np.asarray(served["digits"].raw[0], dtype=np.float64)  # 0..16
    picture = io.BytesIO()
    Image.fromarray((ink * 255 / 16).round().astype(np.uint8)).save(picture, format="PNG")
    from_file = client.post("/predict", files={"file": ("digit.png", picture.getvalue())}).json()
    from_json = client.post("/predict", json={"inputs": [ink.tolist()]}).json()
    assert from_file["predictions"][0]["index"] == from_json["predictions"][0]["index"]


BAD_REQUESTS = [  # (kind, body, status, field, words in the message)
    ("digits", {"inputs": [[[1, 2]]]}, 422, "inputs[0]", "expected shape [1, 8, 8]; got [1, 2]"),
    ("digits", {"inputs": [[[300] * 8] * 8]}, 422, "inputs[0]", "0 to 16"),
    ("digits", {"inputs": [[["a"] * 8] * 8]}, 422, "inputs[0]", "not all numbers"),
    ("digits", {"inputs": [[[1] * 8] * 7 + [[1] * 3]]}, 422, "inputs[0]", "uneven"),
    ("digits", {"inputs": "nope"}, 422, "inputs", "list of samples"),
    ("digits", {"inputs": []}, 422, "inputs", "at least one"),
    ("digits", {"samples": []}, 422, "inputs", '{"inputs"'),
    ("mnist1d", {"inputs": [[0.5] * 39]}, 422, "inputs[0]", "shape [40]"),
    ("table", {"inputs": [{"height cm": 1, "weight": 2, "age": 3, "shoe": 4}]}, 422,
     "inputs[0].shoe", "unknown column 'shoe'"),
    ("table", {"inputs": [{"height cm": 1, "weight": 2}]}, 422, "inputs[0].age", "missing"),
    ("table", {"inputs": [{"height cm": 1, "weight": "2", "age": 3}]}, 422, "inputs[0].weight",
     "expected a number; got a string"),
    ("text", {"inputs": [42]}, 422, "inputs[0]", "expected a string; got a number"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "body", "status", "field", "words"), BAD_REQUESTS)
def test_bad_requests_get_a_4xx_naming_the_field(kind, body, status, field, words, served):
    response = client_for(served[kind]).post("/predict", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert words in response.json()["detail"]


def test_malformed_bodies_and_files_are_refused_and_the_server_keeps_answering(served):
    client = client_for(served["digits"])
    response = client.post("/predict", content=b"{not json")
    assert response.status_code == 400 and response.json()["field"] == "body"
    response = client.post("/predict", files={"file": ("x.png", b"not an image")})
    assert response.status_code == 422 and response.json()["field"] == "file"
    text = client_for(served["text"]).post("/predict", files={"file": ("x.png", b"...")})
    assert text.status_code == 415 and "image models" in text.json()["detail"]
    assert client.post("/predict", json={"inputs": served["digits"].raw[:1]}).status_code == 200


def test_limits_on_samples_and_body_size(served, monkeypatch):
    monkeypatch.setenv("STUDIO_SERVE_MAX_SAMPLES", "2")
    monkeypatch.setenv("STUDIO_SERVE_MAX_BODY_MB", "0.01")  # 10 kB
    client = client_for(served["digits"])
    response = client.post("/predict", json={"inputs": served["digits"].raw[:3]})
    assert response.status_code == 413 and "limit of 2" in response.json()["detail"]
    big = json.dumps({"inputs": [served["digits"].raw[0]] * 80}).encode()
    response = client.post("/predict", content=big)
    assert response.status_code == 413 and response.json()["field"] == "body"

    def chunks():  # no Content-Length: counted as it arrives
        yield big[:5000]
        yield big[5000:]

    response = client.post("/predict", content=chunks())
    assert response.status_code == 413 and "10485 bytes" in response.json()["detail"]


def test_with_an_api_key_every_request_needs_it(served, monkeypatch):
    monkeypatch.setenv("STUDIO_API_KEY", "s3cret")
    client = client_for(served["digits"])
    assert client.get("/health").status_code == 401
    wrong = client.get("/metadata", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["field"] == "Authorization"
    body = {"input": served["digits"].raw[0]}
    assert client.post("/explain", json=body).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/health", headers=good).json() == {"status": "ok"}
    response = client.post("/predict", json={"inputs": served["digits"].raw[:1]}, headers=good)
    assert response.status_code == 200


def test_explain_answers_what_studio_explain_json_says(served):
    from core.data import load_dataset

    run = served["digits"]
    client = client_for(run)
    body = {"input": run.raw[0], "method": "saliency", "sanity_check": False}
    response = client.post("/explain", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    model = load_torch_model(run.folder)
    expected = explain(
        model,
        torch.from_numpy(run.normalized[0]),
        method="saliency",
        dataset=load_dataset("digits"),
        sanity_check=False,
    ).to_dict()
    assert set(expected) <= set(document)
    assert document["prediction"] == expected["prediction"]
    assert document["summary"] == expected["summary"]
    np.testing.assert_allclose(document["attribution"], expected["attribution"], atol=1e-6)
    assert np.asarray(document["attribution"]).shape == (1, 8, 8)

    refused = client.post("/explain", json={"input": run.raw[0], "method": "magic"})
    assert refused.status_code == 422 and refused.json()["field"] == "method"
    refused = client.post("/explain", json={"input": [[1]], "method": "saliency"})
    assert refused.status_code == 422 and refused.json()["field"] == "input"
    regression = client_for(served["regression"]).post("/explain", json={"input": {}})
    assert regression.status_code == 422 and "regression" in regression.json()["detail"]
