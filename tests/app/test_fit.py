"""The Train page's fit sentence: the failing layer named once, its fix in words as on Build."""

from __future__ import annotations

from app.fit import fit_message
from core import builder
from core.data import describe_dataset


def test_a_model_that_does_not_fit_is_told_in_words_naming_the_layer_once():
    info = describe_dataset("digits")
    spec = {"layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}, {"type": "Linear"}]}
    message = fit_message(builder.trace(spec, info.facts, finished=True), info)
    assert message.count("layer 1 Linear") == 1 and "Block 1" not in message
    assert "add a Flatten block before it" in message and '{"type"' not in message


def test_a_model_that_fits_says_its_size_and_output():
    info = describe_dataset("digits")
    spec = {"layers": [{"type": "Flatten"}, {"type": "Linear"}]}
    message = fit_message(builder.trace(spec, info.facts, finished=True), info)
    assert message == "The model fits digits: 650 parameters, output 10 for 10 classes."
