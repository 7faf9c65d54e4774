"""ModelFacts: one object for what a model reads, produced by datasets, typed shapes and runs,
taken by the tracer, the builder, the code generator and the explain engine."""

from __future__ import annotations

import pytest
import torch

from core import runs
from core.builder import build_model, trace
from core.codegen import generate_code
from core.data import describe_dataset, load_dataset
from core.errors import SpecError
from core.explain.explanation import as_sample, input_facts
from core.facts import PLACEHOLDER_VOCAB, ModelFacts, input_dtype_for
from tests.specs import TINY_MLP

TEXT = {
    "name": "bag",
    "input_shape": [6],
    "layers": [
        {"type": "Embedding", "embedding_dim": 4},
        {"type": "SequencePool", "mode": "mean"},
        {"type": "Linear"},
    ],
}


def test_text_means_int64_token_ids_and_nothing_else_does():
    assert input_dtype_for("text") == torch.int64
    for modality in ("image", "signal", "tabular", None):
        assert input_dtype_for(modality) == torch.float32
    assert ModelFacts(modality="text").input_dtype == torch.int64
    assert ModelFacts(modality="text").input_dtype_name == "int64"


def test_a_dataset_and_its_description_give_the_same_facts():
    dataset = load_dataset("digits")
    facts = dataset.facts
    assert facts == describe_dataset("digits").facts == dataset.info().facts
    assert facts == ModelFacts(input_shape=(1, 8, 8), num_classes=10, modality="image")
    assert dataset.input_dtype == facts.input_dtype == torch.float32


def test_a_typed_shape_is_read_as_text_when_an_embedding_takes_it():
    facts = ModelFacts.from_input_shape([6], num_classes=2, vocab_size=20)
    assert facts.input_shape == (6,) and facts.modality is None  # lists become tuples
    traced = trace(TEXT, facts)
    assert traced.ok and traced.facts.modality == "text"
    assert traced.input_dtype == torch.int64
    model = build_model(TEXT, facts)
    assert model.facts.input_dtype == model.input_dtype == torch.int64
    assert model.facts.vocab_size == model.vocab_size == 20


def test_facts_survive_a_json_round_trip():
    facts = ModelFacts(input_shape=(1, 40), num_classes=10, vocab_size=None, modality="signal")
    assert ModelFacts.from_dict(facts.to_dict()) == facts
    assert facts.to_dict()["input_dtype"] == "float32"


def test_a_model_without_a_dataset_knows_its_classes_from_its_output():
    head = {"input_shape": [4], "layers": [{"type": "Linear", "out_features": 3}]}
    assert trace(head).facts.num_classes is None
    assert build_model(head).facts.num_classes == build_model(head).num_classes == 3


def test_an_unknown_vocabulary_is_an_error_until_a_placeholder_is_assumed():
    facts = ModelFacts.from_input_shape((6,), num_classes=2)
    with pytest.raises(SpecError, match="num_embeddings"):
        generate_code(TEXT, facts)
    assumed = facts.assume_vocabulary()
    assert assumed.vocab_size == PLACEHOLDER_VOCAB and assumed.vocab_assumed
    assert facts.assume_vocabulary(7).vocab_size == 7
    known = ModelFacts(vocab_size=50)
    assert known.assume_vocabulary() is known  # a known vocabulary is never replaced
    code = generate_code(TEXT, assumed)
    assert f"def __init__(self, vocab_size: int = {PLACEHOLDER_VOCAB}):" in code
    assert "placeholder" in code


def test_the_explain_engine_takes_facts_from_the_dataset_the_model_or_the_caller():
    model = build_model({**TINY_MLP, "input_shape": [1, 8, 8]}, ModelFacts(num_classes=10))
    dataset = load_dataset("digits")
    assert input_facts(model, dataset) == dataset.facts
    assert input_facts(model).input_shape == (1, 8, 8)  # a studio model carries its own
    assert input_facts(torch.nn.Linear(2, 2)) == ModelFacts()  # a plain module: none known
    given = ModelFacts(input_shape=(64,))
    assert input_facts(model, dataset, given) is given
    assert as_sample(torch.zeros(1, 1, 8, 8), dataset.facts).shape == (1, 8, 8)
    with pytest.raises(Exception, match=r"takes \(1, 8, 8\)"):
        as_sample(torch.zeros(2, 8, 8), dataset.facts)


def test_a_saved_run_gives_its_facts():
    run_id = runs.submit_run(spec=TINY_MLP, dataset="digits", config={"device": "cpu"})
    assert runs.run_facts(run_id) == describe_dataset("digits").facts
