"""The live curves of a run, read the way the Train page reads them (no Streamlit here).

The first read of a run takes each metric already downsampled by the database; every later
read takes only the rows after the last id seen, and a reload or a second tab starts from the
curves this server process already holds. The figure is drawn from at most `series.MAX_POINTS`
points per curve, so a run with 100,000 points costs what one with 1,000 does. The bench calls
the same functions as the page.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import plotly.graph_objects as go

from app import figures, series
from core import runs

DRAWN = ("train_loss", "val_loss", "val_accuracy", "val_r2", "val_mae", "lr")
CURVES = (*DRAWN, "samples_per_s")  # samples/s is read for the progress line, not drawn


SNAPSHOT_EVERY = 2_000  # metric rows between two refreshes of a run's shared snapshot
MAX_SNAPSHOTS = 32  # runs whose snapshot this server process keeps

# Curves already read, shared by every page of this server process: a reload or a second tab
# starts from a copy and reads only the newer rows, instead of downsampling the whole run again.
# Copies go in and out under the lock, so no two sessions ever share arrays.
_snapshots: OrderedDict[tuple, series.LiveCurves] = OrderedDict()
_lock = threading.Lock()


def read_curves(run: runs.RunView, live: series.LiveCurves | None) -> series.LiveCurves:
    """`live` brought up to date with the database (a new one for another run or attempt)."""
    if live is None or live.run_id != run.id or live.attempts != run.attempts:
        live = _snapshot(run) or _seed(run)
    fresh = runs.metrics_since(run.id, after_id=live.last_id, names=CURVES)
    series.merge_rows(live, fresh)
    _keep(run, live)
    return live


def _seed(run: runs.RunView) -> series.LiveCurves:
    """The first read of a run: every curve downsampled by the database."""
    live = series.LiveCurves(run_id=run.id, attempts=run.attempts)
    live.latest.update(runs.latest_metrics(run.id))
    for name in DRAWN:
        seeded = runs.metrics_series(run.id, name, max_points=series.MAX_POINTS)
        if seeded.total:
            series.seed_curve(
                live,
                name,
                seeded.steps,
                seeded.values,
                recorded=seeded.total,
                last_id=seeded.last_id,
            )
    return live


def _key(run: runs.RunView) -> tuple:
    return (run.id, run.attempts, run.created)  # created: a deleted run's id may come back


def _snapshot(run: runs.RunView) -> series.LiveCurves | None:
    with _lock:
        kept = _snapshots.get(_key(run))
        return copy.deepcopy(kept) if kept is not None else None


def _keep(run: runs.RunView, live: series.LiveCurves) -> None:
    key = _key(run)
    with _lock:
        kept = _snapshots.get(key)
        if kept is not None and live.last_id - kept.last_id < SNAPSHOT_EVERY:
            return
        _snapshots[key] = copy.deepcopy(live)
        _snapshots.move_to_end(key)
        while len(_snapshots) > MAX_SNAPSHOTS:
            _snapshots.popitem(last=False)


def forget_snapshots() -> None:
    """Drop every shared snapshot (tests and benchmarks measure a cold first read with it)."""
    with _lock:
        _snapshots.clear()


def curves_figure(live: series.LiveCurves) -> go.Figure:
    """The Train page's chart of `live` (samples/s is shown as a number, not drawn)."""
    chart = series.for_chart({name: live.curves[name] for name in DRAWN if name in live.curves})
    return figures.training_curves_figure({name: (c.steps, c.values) for name, c in chart.items()})


def figure_key(live: series.LiveCurves) -> tuple[int, int, int]:
    """Equal keys, equal figures: a poll that brought no new rows can reuse the last figure."""
    return (live.run_id, live.attempts, live.last_id)
