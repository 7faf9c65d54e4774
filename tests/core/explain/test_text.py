"""Text: Layer Integrated Gradients over the Embedding, one score per token; attention maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.data import Dataset, Normalization, Split
from core.errors import ExplainError
from core.explain import attention_maps, explain
from core.studio_layers import SelfAttention

VOCABULARY = ["<pad>", "<unk>", "the", "great", "film", "dull"]


class BagOfWords(nn.Module):
    """logit(positive) = 5 per "great"; logit(negative) = 5 per "dull". Known by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCABULARY), 2, padding_idx=0)
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.embedding.weight.zero_()
            self.embedding.weight[3] = torch.tensor([1.0, 0.0])  # great
            self.embedding.weight[5] = torch.tensor([0.0, 1.0])  # dull
            self.head.weight.copy_(torch.tensor([[0.0, 5.0], [5.0, 0.0]]))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(tokens).sum(dim=1))  # (batch, time, 2) -> (batch, 2)


def text_dataset(tokens: torch.Tensor) -> Dataset:
    split = Split(tokens[None], torch.tensor([1]))
    return Dataset(
        name="reviews",
        task="classification",
        modality="text",
        sample_shape=(tokens.numel(),),
        class_names=["negative", "positive"],
        train=split,
        val=split,
        test=split,
        normalization=Normalization(torch.zeros(1), torch.ones(1)),
        vocabulary=VOCABULARY,
    )


def test_layer_integrated_gradients_scores_each_token_by_hand():
    tokens = torch.tensor([2, 3, 4, 3, 0, 0])  # "the great film great <pad> <pad>"
    explanation = explain(
        BagOfWords(), tokens, method="integrated_gradients", dataset=text_dataset(tokens)
    )
    assert explanation.modality == "text"
    assert explanation.prediction.label == "positive"
    assert explanation.attribution.shape == (6,)
    assert explanation.attribution.tolist() == pytest.approx([0, 5, 0, 5, 0, 0], abs=1e-4)
    assert abs(explanation.convergence_delta) < 1e-4
    assert explanation.tokens == ["the", "great", "film", "great", "<pad>", "<pad>"]
    assert '"great"' in explanation.summary  # the top token named in words


def test_hiding_the_top_word_is_measured_on_the_model():
    tokens = torch.tensor([2, 3, 4, 0, 0])  # "the great film": hiding "great" leaves a tie
    explanation = explain(
        BagOfWords(), tokens, method="integrated_gradients", dataset=text_dataset(tokens)
    )
    assert 'It relied most on the word "great": hiding that word lowers its confidence to 50%' in (
        explanation.summary
    )


def test_text_saliency_gives_one_score_per_token():
    tokens = torch.tensor([5, 4, 0])
    explanation = explain(BagOfWords(), tokens, method="saliency", dataset=text_dataset(tokens))
    assert explanation.attribution.shape == (3,)
    # the gradient at every embedding is the same row of the head: equal scores
    assert explanation.attribution[0] == pytest.approx(explanation.attribution[1])


def test_methods_that_need_continuous_inputs_say_what_works_for_text():
    tokens = torch.tensor([3, 4])
    with pytest.raises(ExplainError, match="occlusion is not available for text models"):
        explain(BagOfWords(), tokens, method="occlusion", dataset=text_dataset(tokens))


class TinyAttentionModel(nn.Module):
    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCABULARY), 8)
        self.attention = attention
        self.head = nn.Linear(8, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.attention(self.embedding(tokens))
        if isinstance(hidden, tuple):
            hidden = hidden[0]
        return self.head(hidden.mean(dim=1))


class PlainAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize(
    "attention", [SelfAttention(8, 2), PlainAttention()], ids=["studio", "mha"]
)
def test_attention_maps_are_per_head_rows_that_sum_to_one(attention):
    torch.manual_seed(0)
    model = TinyAttentionModel(attention).eval()
    maps = attention_maps(model, torch.tensor([2, 3, 4, 5, 1]))
    assert len(maps) == 1
    weights = maps[0].weights
    assert weights.shape == (2, 5, 5)
    assert np.allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert not hasattr(model, "record_attention")  # left as it was found


def test_a_model_without_attention_has_no_maps():
    assert attention_maps(BagOfWords(), torch.tensor([2, 3])) == []
