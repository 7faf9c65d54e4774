"""The live curves of a run, read the way the Train and Runs pages read them (no Streamlit here).

One cache per server process sits between the database and every chart: the first read of a
run takes each metric already reduced (core.runs.metrics_series), every later read, from any
session or tab, takes only the rows after the last id seen and merges them by the same rule
(app.series). So a reload, a second tab and a long-open page all draw the same points, and a
run with 100,000 points is drawn from at most `series.MAX_POINTS` per curve. The bench calls
the same functions as the pages.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import plotly.graph_objects as go

from app import figures, series
from core import metric_catalog as catalog
from core import runs

MAX_CACHED = 32  # runs whose curves this server process keeps

# Curves shared by every session of this server process. LiveCurves values are immutable, so a
# session may keep the one it was handed; the lock makes one reader at a time bring a run up to
# date (two tabs polling the same run read its new rows once).
_cache: OrderedDict[tuple, series.LiveCurves] = OrderedDict()
_lock = threading.Lock()


def read_curves(run: runs.RunView) -> series.LiveCurves:
    """The run's curves, brought up to date with the database."""
    key = _key(run)
    with _lock:
        live = _cache.get(key)
        if live is None:
            live = _seed(run)
        fresh = runs.metrics_since(run.id, after_id=live.last_id, names=catalog.LIVE)
        live = series.merge_rows(live, fresh, curve_names=catalog.DRAWN)
        _cache[key] = live
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return live


def _seed(run: runs.RunView) -> series.LiveCurves:
    """The first read of a run: every curve reduced by the database read."""
    live = series.LiveCurves(
        run_id=run.id, attempts=run.attempts, latest=runs.latest_metrics(run.id)
    )
    for name in catalog.DRAWN:
        seeded = runs.metrics_series(run.id, name, max_points=series.MAX_POINTS)
        if seeded.total:
            live = series.seed_curve(
                live,
                name,
                seeded.steps,
                seeded.epochs,
                seeded.values,
                recorded=seeded.total,
                last_step=seeded.last_step,
                last_id=seeded.last_id,
            )
    return live


def _key(run: runs.RunView) -> tuple:
    # attempts: a re-claimed run rewinds its metrics; created: a deleted run's id may come back
    return (run.id, run.attempts, run.created)


def forget_cache() -> None:
    """Drop every cached run (tests and benchmarks measure a cold first read with it)."""
    with _lock:
        _cache.clear()


def curves_figure(live: series.LiveCurves) -> go.Figure:
    """The Train page's chart of `live` (samples/s is shown as a number, not drawn)."""
    return figures.training_curves_figure(series.chart_series(live, catalog.DRAWN))


def compared_curves(run: runs.RunView) -> dict:
    """The Runs page's overlay curves of one run (name -> (steps, values)), from the cache."""
    return series.chart_series(read_curves(run), catalog.COMPARED)


def figure_key(live: series.LiveCurves) -> tuple[int, int, int]:
    """Equal keys, equal figures: a poll that brought no new rows can reuse the last figure."""
    return (live.run_id, live.attempts, live.last_id)
