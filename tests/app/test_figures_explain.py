"""Explanation figures: arrays in, the right Plotly traces out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures_explain import (
    attention_map_figure,
    explanation_figure,
    image_overlay_figure,
    probability_bars_figure,
    signal_bars_figure,
    spatial_map,
    token_highlight_figure,
)


def test_image_overlay_is_the_picture_under_a_heatmap_of_the_same_size():
    image = np.zeros((8, 8, 1), dtype=np.uint8)
    attribution = np.random.default_rng(0).normal(size=(1, 8, 8))
    fig = image_overlay_figure(image, attribution, title="Integrated Gradients")
    assert isinstance(fig, go.Figure)
    assert [trace.type for trace in fig.data] == ["image", "heatmap"]
    assert np.asarray(fig.data[0].z).shape == (8, 8, 3)  # grey becomes RGB
    assert np.asarray(fig.data[1].z).shape == (8, 8)
    assert fig.data[1].zmin == -fig.data[1].zmax  # signed: white means "no effect"


def test_image_overlay_sums_colour_channels_and_refuses_a_mismatch():
    attribution = np.ones((3, 4, 4))
    assert spatial_map(attribution).tolist() == np.full((4, 4), 3.0).tolist()
    fig = image_overlay_figure(np.zeros((4, 4, 3), dtype=np.uint8), attribution)
    assert fig.data[1].zmin == 0  # nothing negative: a one-sided scale
    with pytest.raises(ValueError, match="does not cover"):
        image_overlay_figure(np.zeros((5, 5, 3), dtype=np.uint8), attribution)


def test_signal_bars_have_one_bar_per_time_step_over_the_line():
    signal = np.sin(np.linspace(0, 6, 40))
    attribution = np.linspace(-1, 1, 40).reshape(1, 40)
    fig = signal_bars_figure(signal, attribution)
    bars, line = fig.data
    assert (bars.type, line.type) == ("bar", "scatter")
    assert len(bars.y) == 40 and len(line.y) == 40
    assert bars.marker.color[0] != bars.marker.color[-1]  # against vs for


def test_tokens_are_highlighted_in_reading_order_without_padding():
    fig = token_highlight_figure(["the", "great", "film", "<pad>"], [0.0, 2.0, 0.5, 0.0], per_row=2)
    (heatmap,) = fig.data
    assert heatmap.type == "heatmap"
    assert np.asarray(heatmap.text).tolist() == [["the", "great"], ["film", ""]]


def test_attention_map_averages_heads_unless_one_is_chosen():
    weights = np.stack([np.eye(3), np.full((3, 3), 1 / 3)])
    averaged = attention_map_figure(weights, tokens=["a", "b", "c"])
    assert averaged.data[0].type == "heatmap"
    assert np.allclose(np.asarray(averaged.data[0].z), weights.mean(axis=0))
    first = attention_map_figure(weights, head=0)
    assert np.allclose(np.asarray(first.data[0].z), np.eye(3))


def test_probability_bars_put_the_prediction_first():
    fig = probability_bars_figure(
        [{"label": "7", "probability": 0.93}, {"label": "1", "probability": 0.05}]
    )
    (bars,) = fig.data
    assert bars.type == "bar" and bars.orientation == "h"
    assert list(bars.y) == ["7", "1"]
    assert list(bars.text) == ["93%", "5%"]


@pytest.mark.parametrize(
    ("modality", "human", "attribution", "trace"),
    [
        ("image", np.zeros((8, 8, 1), dtype=np.uint8), np.ones((1, 8, 8)), "heatmap"),
        ("signal", np.zeros(40), np.ones((1, 40)), "bar"),
        ("text", "a b", np.ones(2), "heatmap"),
        ("tabular", {"age": 1.0, "income": 2.0}, np.ones(2), "bar"),
    ],
)
def test_explanation_figure_picks_the_picture_for_the_modality(modality, human, attribution, trace):
    fig = explanation_figure(modality, human, attribution)
    assert trace in [t.type for t in fig.data]


def test_table_bars_are_coloured_by_sign_largest_first():
    row = {"age": 40.0, "income": 2.0, "debt": 1.0}
    fig = explanation_figure("tabular", row, np.array([0.2, -0.9, 0.05]))
    bars = fig.data[0]
    assert list(bars.y) == ["income", "age", "debt"]  # the largest effect on top
    assert list(bars.marker.color) == ["#2C7BB6", "#D7191C", "#D7191C"]  # blue away, red towards


def test_the_signal_legend_sits_under_the_plot_not_on_the_title():
    fig = signal_bars_figure(np.zeros(40), np.ones(40), title="Integrated Gradients")
    assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"
