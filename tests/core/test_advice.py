"""Advice on models that build but cannot learn what they seem to (core.advice)."""

from __future__ import annotations

from core import builder
from core.advice import advise
from core.facts import ModelFacts

SIGNAL = ModelFacts(input_shape=(1, 40), num_classes=10, modality="signal")
TEXT = ModelFacts(input_shape=(20,), num_classes=2, vocab_size=50, modality="text")


def advice_for(layers, facts):
    traced = builder.trace({"layers": layers}, facts)
    assert traced.ok, traced.error
    return advise(traced)


def test_a_gru_reading_one_step_of_40_values_is_told_to_permute_first():
    (item,) = advice_for(
        [{"type": "GRU", "hidden_size": 8}, {"type": "SequencePool"}, {"type": "Linear"}], SIGNAL
    )
    assert item.index == 0 and item.layer_type == "GRU"
    assert "length 1" in item.message and "40 steps of 1 value" in item.message
    assert item.fix.insert_before == ({"type": "Permute", "dims": [1, 0]},)
    # the fix applied: 40 steps of 1 value, nothing more to say
    fixed = [{"type": "Permute", "dims": [1, 0]}, {"type": "GRU", "hidden_size": 8}]
    assert advice_for([*fixed, {"type": "SequencePool"}, {"type": "Linear"}], SIGNAL) == []


def test_last_step_of_padded_texts_is_flagged_and_mean_is_offered():
    layers = [
        {"type": "Embedding", "embedding_dim": 8},
        {"type": "LSTM", "hidden_size": 8},
        {"type": "SequencePool"},
        {"type": "Linear"},
    ]
    (item,) = advice_for(layers, TEXT)
    assert item.index == 2 and "padd" in item.message
    assert item.fix.set_args == {"mode": "mean"}
    layers[2] = {"type": "SequencePool", "mode": "mean"}
    assert advice_for(layers, TEXT) == []


def test_last_step_of_a_signal_is_fine():
    layers = [
        {"type": "Permute", "dims": [1, 0]},
        {"type": "GRU", "hidden_size": 8},
        {"type": "SequencePool"},
        {"type": "Linear"},
    ]
    assert advice_for(layers, SIGNAL) == []
