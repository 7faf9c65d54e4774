"""The examples the Deploy page shows paste and run as they are, whatever the sample holds."""

from __future__ import annotations

import ast
import json
import shlex

import numpy as np

from core.serve.examples import curl_example, human_view, python_example

SAMPLES = ['don\'t stop "now" $HOME', [[[0, 16], [3, 4]]], {"height cm": 1.5, "age": 30}]


def test_curl_example_posts_the_sample_exactly():
    for sample in SAMPLES:
        words = shlex.split(curl_example("http://127.0.0.1:8000", sample, with_key=True))
        assert words[:3] == ["curl", "-s", "http://127.0.0.1:8000/predict"]
        assert "Authorization: Bearer $STUDIO_API_KEY" in words  # expanded by the shell, unquoted
        body = words[words.index("-d") + 1]
        assert json.loads(body) == {"inputs": [sample]}


def test_python_example_is_valid_python_holding_the_sample():
    for sample in SAMPLES:
        for with_key in (False, True):
            tree = ast.parse(python_example("http://127.0.0.1:8000", sample, with_key=with_key))
            assigned = next(n for n in tree.body if isinstance(n, ast.Assign))
            assert ast.literal_eval(assigned.value) == sample


def test_raw_images_are_drawn_as_0_to_255_pixels():
    contract = {"kind": "image", "shape": [1, 2, 2], "input": {"raw_max": 16}}
    pixels = human_view(contract, [[0, 16], [8, 4]])
    assert pixels.shape == (2, 2, 1) and pixels.dtype == np.uint8
    assert pixels[:, :, 0].tolist() == [[0, 255], [128, 64]]
