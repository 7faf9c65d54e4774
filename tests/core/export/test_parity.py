"""The parity check and the pieces around it, on models whose right answer is known by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.data import Split
from core.errors import ExportError
from core.export.bundle import pick_examples
from core.export.onnx import export_onnx
from core.export.parity import max_abs_diff, parity_samples
from core.export.program import capture
from core.facts import ModelFacts


class Drifting(nn.Module):
    """Adds how often it has been called: a Python number the exporter bakes in as a constant,
    so the exported file answers as the model did once, not as it does now."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x) + self.calls * 1e-3


def test_an_export_that_does_not_answer_as_the_model_fails_naming_the_difference(
    tmp_path: Path,
) -> None:
    model = Drifting()
    samples = torch.randn(8, 4)
    with pytest.raises(ExportError) as error:
        export_onnx(model, ModelFacts(input_shape=(4,)), tmp_path / "m.onnx", samples)
    message = str(error.value)
    found = re.search(
        r"largest absolute difference on 8 real samples is ([0-9.e-]+), the limit", message
    )
    assert found and float(found.group(1)) >= 1e-4, message


def test_max_abs_diff_is_the_largest_difference_over_both_batches() -> None:
    model = nn.Linear(3, 2)
    samples = torch.randn(5, 3)

    def off_on_the_big_batch(batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            out = model(batch).numpy()
        return out + (3e-5 if len(batch) > 1 else 1e-5)

    assert max_abs_diff(model, off_on_the_big_batch, samples, what="file") == pytest.approx(
        3e-5, rel=1e-2
    )
    with pytest.raises(ExportError, match=r"on 5 real samples is 0\.0002, the limit is 0\.0001"):
        max_abs_diff(model, lambda b: model(b).detach().numpy() + 2e-4, samples, what="file")
    with pytest.raises(ExportError, match=r"is nan"):
        max_abs_diff(model, lambda b: np.full((len(b), 2), np.nan), samples, what="file")
    with pytest.raises(ExportError, match=r"answers with shape \[1, 3\] at batch 1; .* \[1, 2\]"):
        max_abs_diff(model, lambda b: np.zeros((len(b), 3)), samples, what="file")


def test_samples_of_the_wrong_shape_are_refused_before_exporting(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"the samples are shaped \[5\]; the model reads \[4\]"):
        export_onnx(
            nn.Linear(4, 2), ModelFacts(input_shape=(4,)), tmp_path / "m.onnx", torch.zeros(2, 5)
        )
    assert not (tmp_path / "m.onnx").exists()


def test_parity_samples_come_from_test_first_then_val_and_train() -> None:
    def split(start: int, n: int) -> Split:
        return Split(x=torch.arange(start, start + n).float().reshape(n, 1), y=torch.zeros(n))

    class Tiny:
        name = "tiny"
        test, val, train = split(0, 3), split(100, 2), split(200, 10)

    assert parity_samples(Tiny, count=7).flatten().tolist() == [0, 1, 2, 100, 101, 200, 201]
    assert parity_samples(Tiny, count=2).flatten().tolist() == [0, 1]

    class Empty:
        name = "empty"
        test = val = train = split(0, 0)

    with pytest.raises(ExportError, match="dataset 'empty' has no samples"):
        parity_samples(Empty)


def test_python_branching_on_values_is_a_clear_export_error() -> None:
    class SignFlip(nn.Module):  # a graph cannot hold a Python `if` on a tensor's value
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    with pytest.raises(ExportError) as error:
        capture(SignFlip(), torch.randn(2, 4))
    assert str(error.value) == (
        "torch.export cannot capture this model: a layer's output shape or path depends on "
        "the values of its input, not only on its shape; such a model can run in the studio "
        "but not as a fixed graph"
    )


def test_examples_are_right_answers_of_different_classes_then_a_mistake() -> None:
    predicted = [1, 1, 2, 0, 3]
    labels = [1, 1, 2, 2, 3]
    assert pick_examples(predicted, labels) == [0, 2, 3]
    assert pick_examples([0, 0], [0, 0]) == [0, 1]  # no mistake, one class: what there is
    assert pick_examples([1], [0]) == [0]
