"""Shipped templates: each documented, valid, and built for the dataset it names."""

from __future__ import annotations

import pytest

from core.builder import trace
from core.errors import NotFoundError
from core.templates import get_template, list_templates

DATASET_SHAPES = {"cifar10": (3, 32, 32), "digits": (1, 8, 8), "mnist1d": (1, 40)}
REQUIRED = {
    "cifar10-tutorial-cnn",
    "digits-cnn",
    "mnist1d-cnn",
    "mnist1d-gru",
    "mnist1d-transformer",
    "residual-cnn",
}


def test_the_issue_templates_are_shipped():
    assert {t.name for t in list_templates()} >= REQUIRED


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.name)
def test_template_is_valid_and_documented(template):
    assert template.spec["name"] == template.name
    assert template.description.endswith(".") and len(template.description.split()) >= 8
    assert DATASET_SHAPES[template.dataset] == tuple(template.spec["input_shape"])
    traced = trace(template.spec)
    assert traced.ok, traced.error
    assert traced.output_shape == (10,)


def test_cifar10_tutorial_cnn_has_62006_parameters():
    traced = trace(get_template("cifar10-tutorial-cnn").spec)
    assert traced.params == 62_006


def test_families_are_covered_by_the_templates():
    types = {layer["type"] for t in list_templates() for layer in t.spec["layers"]}
    assert {
        "Conv1d",
        "Conv2d",
        "GRU",
        "TransformerEncoderLayer",
        "MultiheadAttention",
        "Add",
        "PositionalEncoding",
        "SequencePool",
    } <= types
    residual = get_template("residual-cnn").spec
    assert any("inputs" in layer for layer in residual["layers"])


def test_get_template_returns_a_fresh_copy_and_refuses_unknown_names():
    first = get_template("digits-cnn")
    first.spec["layers"].clear()
    assert get_template("digits-cnn").spec["layers"]
    with pytest.raises(NotFoundError, match="no template named 'nope'; templates: .*digits-cnn"):
        get_template("nope")
