"""The metric catalog: every name the loop records has a title, a format and a chart."""

from __future__ import annotations

from core import metric_catalog as catalog
from core import runs
from tests.specs import TINY_MLP


def test_titles_and_formats_come_from_one_entry():
    assert catalog.title("val_accuracy") == "validation accuracy"
    assert catalog.value_text("test_accuracy", 0.93125) == "93.12%"
    assert catalog.value_text("samples_per_s", 5120.4) == "5,120 samples/s"
    assert catalog.value_text("train_loss", None) == "—"
    assert catalog.metric("val_loss").higher_is_better is False
    assert catalog.metric("something_new").title == "something new"  # never hidden


def test_each_live_panel_draws_its_metrics_in_colour_order():
    assert catalog.on_chart(catalog.Chart.LOSS) == ("train_loss", "val_loss")
    assert catalog.on_chart(catalog.Chart.ACCURACY) == ("val_accuracy", "val_r2", "val_mae")
    assert catalog.on_chart(catalog.Chart.LR) == ("lr",)
    assert set(catalog.SUMMARY) <= set(catalog.METRICS)


def test_every_metric_a_run_records_is_in_the_catalog():
    config = {"epochs": 1, "batch_size": 64, "device": "cpu", "log_every": 5}
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=config)
    recorded = {row.name for row in runs.metrics_since(result["run_id"])}
    assert recorded and recorded <= set(catalog.METRICS), recorded - set(catalog.METRICS)
