"""The run service: what the UI and the CLI call to queue, watch, steer and clean up training.

Everything here is headless (no Streamlit) and goes through the store; training itself happens
in core.worker (a `studio worker` process, or in-process for `studio train`). One module per job:

  views     plain snapshots (RunView, MetricSeries, ...) the pages and the CLI read
  submit    check once, then queue a run or train it in the foreground
  reading   runs, metrics and checkpoints
  control   stop, pause, resume, delete
  models    a trained run's model from its checkpoint
  specs     saved, versioned specs
  workers   live workers; spawning a local one
"""

from core.runs.control import (
    apply_request,
    delete_run,
    request_pause,
    request_restart,
    request_resume,
    request_stop,
)
from core.runs.models import load_run_model, run_facts
from core.runs.reading import (
    children_of,
    get_run,
    latest_metrics,
    list_checkpoints,
    list_runs,
    metrics_series,
    metrics_since,
)
from core.runs.specs import get_spec, list_specs, save_spec
from core.runs.submit import (
    TRAIN_JSON_METRICS,
    ProgressFn,
    check_launch,
    run_result,
    submit_run,
    train_run_foreground,
)
from core.runs.views import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    CheckpointView,
    MetricRow,
    MetricSeries,
    RunView,
    SpecView,
    WorkerView,
)
from core.runs.workers import ensure_local_worker, list_workers, workers_able

__all__ = [
    "children_of",
    "ACTIVE_STATUSES",
    "RUN_STATUSES",
    "TRAIN_JSON_METRICS",
    "CheckpointView",
    "MetricRow",
    "MetricSeries",
    "ProgressFn",
    "RunView",
    "SpecView",
    "WorkerView",
    "apply_request",
    "check_launch",
    "delete_run",
    "ensure_local_worker",
    "get_run",
    "get_spec",
    "latest_metrics",
    "list_checkpoints",
    "list_runs",
    "list_specs",
    "list_workers",
    "workers_able",
    "load_run_model",
    "metrics_series",
    "metrics_since",
    "request_pause",
    "request_restart",
    "request_resume",
    "request_stop",
    "run_facts",
    "run_result",
    "save_spec",
    "submit_run",
    "train_run_foreground",
]
