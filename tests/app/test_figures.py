"""Figure builders are pure: plain data in, a Plotly figure out, checked without Streamlit."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from app import figures
from app.figures import DiagramBlock
from app.formatting import count_text, duration_text, eta_seconds, parse_int_list, shape_text
from app.series import MAX_POINTS, LiveCurves, merge_rows


def texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def lenet_blocks(*, error_at: int | None = None) -> list[DiagramBlock]:
    rows = [
        ("Conv2d", "CNN", (6, 6, 6), 60),
        ("ReLU", "Common", (6, 6, 6), 0),
        ("Flatten", "Common", (216,), 0),
        ("Linear", "Common", (10,), 2170),
    ]
    blocks = []
    for index, (kind, family, shape, params) in enumerate(rows):
        status = "ok"
        if error_at is not None:
            status = "error" if index == error_at else "unreached" if index > error_at else "ok"
        blocks.append(
            DiagramBlock(
                index=index,
                type=kind,
                family=family,
                output_shape=shape if status == "ok" else None,
                params=params if status == "ok" else None,
                status=status,
            )
        )
    return blocks


def test_architecture_has_a_box_per_block_plus_input_and_shapes_on_edges():
    fig = figures.architecture_figure(lenet_blocks(), input_shape=(1, 8, 8))
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(boxes) == 5  # input + 4 layers
    labels = texts(fig)
    assert "1×8×8" in labels and "6×6×6" in labels and "216" in labels
    assert "output 10" in labels
    assert any(t == "2.17k params" for t in labels)


def test_architecture_colours_blocks_by_family():
    fig = figures.architecture_figure(lenet_blocks(), input_shape=(1, 8, 8))
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert boxes[1].fillcolor == figures.FAMILY_COLORS["CNN"][0]
    assert boxes[2].fillcolor == figures.FAMILY_COLORS["Common"][0]


def test_architecture_marks_the_failing_block_and_greys_the_rest():
    fig = figures.architecture_figure(lenet_blocks(error_at=2), input_shape=(1, 8, 8))
    boxes = [s for s in fig.layout.shapes if s.type == "rect"]
    assert boxes[3].line.color == figures.ERROR_COLORS[1]
    assert boxes[4].line.dash == "dot"
    assert "6×6×6" in texts(fig)  # the good part still shows its shapes
    assert "⚠ error here" in texts(fig)


def test_architecture_draws_skip_connections_as_paths():
    blocks = [
        DiagramBlock(0, "Linear", "Common", id="a", output_shape=(8,), params=72),
        DiagramBlock(1, "ReLU", "Common", output_shape=(8,)),
        DiagramBlock(2, "Add", "Common", output_shape=(8,), sources=(0, 1)),
    ]
    fig = figures.architecture_figure(blocks, input_shape=(8,))
    assert [s for s in fig.layout.shapes if s.type == "path"]


def test_empty_architecture_is_just_the_input():
    fig = figures.architecture_figure([], input_shape=None)
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 1
    assert "shape not set" in texts(fig)


def test_training_curves_put_each_metric_in_its_panel():
    series = {
        "train_loss": ([25, 50, 75], [2.3, 1.9, 1.2]),
        "val_loss": ([75], [1.1]),
        "val_accuracy": ([75], [0.7]),
        "lr": ([25, 50, 75], [1e-3, 1e-3, 1e-3]),
    }
    fig = figures.training_curves_figure(series)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["train loss"].y) == [2.3, 1.9, 1.2]
    assert by_name["train loss"].xaxis == "x" and by_name["validation accuracy"].xaxis == "x2"
    assert by_name["learning rate"].xaxis == "x3"
    assert by_name["validation loss"].mode == "lines+markers"


def test_training_curves_without_points_say_they_are_waiting():
    fig = figures.training_curves_figure({})
    assert figures.EMPTY_NOTE in texts(fig) and "after the first epoch" in texts(fig)
    early = figures.training_curves_figure({"train_loss": ([25], [2.3]), "lr": ([25], [1e-3])})
    assert texts(early).count("after the first epoch") == 1


def test_overlay_uses_one_colour_per_run_across_panels():
    a = {"train_loss": ([1, 2], [1.0, 0.5]), "val_accuracy": ([2], [0.8])}
    b = {"train_loss": ([1, 2], [1.2, 0.7]), "val_accuracy": ([2], [0.6])}
    fig = figures.runs_overlay_figure([("run 1", a), ("run 2", b)])
    run1 = [t for t in fig.data if t.name == "run 1"]
    assert len(run1) == 3 and len({t.line.color for t in run1}) == 1
    assert sum(1 for t in fig.data if t.showlegend) == 2


def test_confusion_matrix_colours_by_share_and_prints_counts():
    matrix = [[8, 2], [0, 90]]
    fig = figures.confusion_matrix_figure(matrix, ["cat", "dog"])
    heat = fig.data[0]
    assert list(heat.x) == ["cat", "dog"]
    assert np.allclose(heat.z, [[0.8, 0.2], [0.0, 1.0]])
    assert np.array_equal(heat.text, [[8, 2], [0, 90]])


def test_per_class_accuracy_is_diagonal_over_row_total():
    fig = figures.per_class_accuracy_figure([[8, 2], [0, 90]], ["cat", "dog"])
    assert np.allclose(fig.data[0].y, [0.8, 1.0])
    assert list(fig.data[0].text) == ["80%", "100%"]


def test_class_balance_has_a_bar_group_per_split():
    fig = figures.class_balance_figure({"train": [5, 7], "test": [1, 2]}, ["a", "b"])
    assert [t.name for t in fig.data] == ["train", "test"]
    assert list(fig.data[0].y) == [5, 7]


@pytest.mark.parametrize("channels", [1, 3])
def test_image_grid_builds_one_mosaic_with_labels(channels):
    images = [np.full((8, 8, channels), i * 20, dtype=np.uint8) for i in range(10)]
    fig = figures.image_grid_figure(images, [str(i) for i in range(10)], columns=4)
    mosaic = np.asarray(fig.data[0].z)
    assert mosaic.shape[2] == 3 and mosaic.shape[1] > 4 * 8
    assert texts(fig) == [str(i) for i in range(10)]


def test_signal_figure_draws_each_signal_with_its_label():
    signals = [np.sin(np.linspace(0, i, 40)) for i in range(1, 6)]
    fig = figures.signal_figure(signals, ["a", "b", "c", "d", "e"], columns=3)
    assert len(fig.data) == 5
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c", "d", "e"]


def test_every_figure_serializes_to_json():
    fig = figures.training_curves_figure({"train_loss": (np.arange(5), np.ones(5))})
    json.loads(fig.to_json())


# ---- live merging ----------------------------------------------------------------------------


class Row:
    def __init__(self, id, name, step, value, epoch=1):
        self.id, self.name, self.step, self.value, self.epoch = id, name, step, value, epoch


def test_merge_rows_appends_incrementally_and_tracks_last_id():
    live = merge_rows(LiveCurves(run_id=1), [Row(1, "train_loss", 25, 2.0), Row(2, "lr", 25, 0.1)])
    live = merge_rows(live, [Row(3, "train_loss", 50, 1.5)])
    assert live.last_id == 3
    assert list(live.curves["train_loss"].values) == [2.0, 1.5]
    assert live.recorded == {"train_loss": 2, "lr": 1}


def test_merge_rows_never_changes_the_curves_it_was_given():
    before = merge_rows(LiveCurves(run_id=1), [Row(1, "train_loss", 1, 2.0)])
    after = merge_rows(before, [Row(2, "train_loss", 2, 1.0)])
    assert len(before.curves["train_loss"]) == 1 and len(after.curves["train_loss"]) == 2
    with pytest.raises(ValueError):  # shared between sessions: read-only
        after.curves["train_loss"].values[0] = 0.0


def test_merge_rows_bounds_long_curves_and_keeps_spikes():
    values = [float(i % 7) for i in range(10_000)]
    values[6_543] = 99.0
    rows = [Row(i + 1, "train_loss", i + 1, v) for i, v in enumerate(values)]
    live = merge_rows(LiveCurves(run_id=1), rows)
    assert len(live.curves["train_loss"]) <= MAX_POINTS
    assert live.recorded["train_loss"] == 10_000
    assert 99.0 in live.curves["train_loss"].values


def test_only_the_named_metrics_get_a_curve():
    rows = [Row(1, "train_loss", 1, 2.0), Row(2, "samples_per_s", 1, 500.0)]
    live = merge_rows(LiveCurves(run_id=1), rows, curve_names=("train_loss",))
    assert set(live.curves) == {"train_loss"} and live.latest["samples_per_s"] == 500.0


# ---- formatting ------------------------------------------------------------------------------


def test_formatting_helpers():
    assert shape_text((16, 8, 8)) == "16×8×8"
    assert count_text(12_345) == "12.3k" and count_text(7) == "7"
    assert duration_text(75) == "1 min 15 s"
    assert eta_seconds(50, 100, 10.0) == 10.0 and eta_seconds(0, 100, 1.0) is None
    assert parse_int_list("3, 32, 32") == [3, 32, 32] and parse_int_list("3x3") == [3, 3]
    with pytest.raises(ValueError, match="whole number"):
        parse_int_list("3, a")
