"""Every session-state key and query parameter the studio uses, in one place.

Streamlit's session state is a flat dict shared by all pages; naming every key here keeps pages
from stepping on each other. The database holds everything that must survive a reload; the
session only holds the spec being edited (mirrored in the URL as a draft) and view choices.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.plain_text import md_escape

# ---- Access (a studio bound beyond localhost) ----------------------------------------------------
ACCESS_GRANTED = "access.granted"  # this session gave the right token once
ACCESS_FORM = "access.form"
ACCESS_TOKEN_INPUT = "access.token"
TOKEN_PARAM = "token"  # ?token=… in the link `studio ui` prints

# ---- Build -----------------------------------------------------------------------------------
DRAFT = "build.draft"  # app.spec_editor.Draft: the spec being edited, with stable block uids
INSERT_AFTER = "build.insert_after"  # uid of the block new blocks go after; None = at the end
INPUT_SOURCE = "build.input_source"  # dataset name, or CUSTOM_INPUT
INPUT_SHAPE_TEXT = "build.input_shape_text"  # "3, 32, 32" when the input is a custom shape
NUM_CLASSES = "build.num_classes"  # classes of a custom input
TEMPLATE_CHOICE = "build.template"
SAVED_CHOICE = "build.saved_choice"
SAVE_NAME = "build.save_name"
SAVE_NAME_FOR = "build.save_name_for"  # the model name SAVE_NAME was last filled from
IMPORT_FILE = "build.import_file"
IMPORT_DIGEST = "build.import_digest"  # the upload already applied, so a rerun does not reapply
NOTICE = "build.notice"  # (kind, message) shown once at the top of the page
CUSTOM_INPUT = "__custom__"
PARAM_PROBLEMS = "build.param_problems"  # widget key -> sentence, for text that cannot be read
BUILD_USE_TEMPLATE = "build.use_template"
BUILD_NEW = "build.new"
BUILD_OPEN = "build.open"
BUILD_SAVE = "build.save"
BUILD_EXPORT = "build.export"
BUILD_DIAGRAM = "build.diagram"
BUILD_TABLE = "build.table"
BUILD_CODE_DOWNLOAD = "build.code_download"
BUILD_CANVAS = "build.canvas"  # the canvas component (app/components/canvas)
CANVAS_SELECTED = "build.canvas_selected"  # uid of the block selected on the canvas, or None
CANVAS_DIRECTION = "build.canvas_direction"  # the canvas's layout: "LR" or "TB"
BUILD_HISTORY = "build.history"  # app.canvas_graph.History: the last specs, for undo / redo
BUILD_UNDO = "build.undo"
BUILD_REDO = "build.redo"
BUILD_SHOW_ALL = "build.show_all"  # "show every block" after a canvas selection
CODE_IMPORT_TEXT = "build.code_import_text"  # PyTorch source pasted in
CODE_IMPORT_FILE = "build.code_import_file"  # a .py file
CODE_IMPORT_CLASS = "build.code_import_class"  # the nn.Module class to import (empty: the last)
CODE_IMPORT_RUN = "build.code_import_run"  # the button: code runs only when it is pressed


def palette_key(layer_type: str) -> str:
    """The palette button that adds a `layer_type` block."""
    return f"palette.{layer_type}"


def model_name_key(draft_key: str) -> str:
    """The model-name box of one loaded document (a new document gets a fresh box)."""
    return f"build.name.{draft_key}"


def block_key(uid: str, name: str) -> str:
    """A widget of the block card `uid`: "up", "delete", "id", ... (all start `b.{uid}.`)."""
    return f"b.{uid}.{name}"


def block_param_key(uid: str, param: str) -> str:
    """The input of one layer argument on the block card `uid`."""
    return block_key(uid, f"p.{param}")


def block_inputs_key(uid: str, options_signature: str) -> str:
    """The "takes input from" box of block `uid`. The browser remembers a choice by the label
    it showed, so the key changes with the labels (a renamed or moved block): a stale label
    is never sent back."""
    return block_key(uid, f"inputs.{options_signature}")


def block_card_key(uid: str) -> str:
    return f"card_{uid}"


def block_advice_key(uid: str, number: int) -> str:
    """The button that applies the `number`th suggested fix on block `uid`."""
    return block_key(uid, f"fix.{number}")


# ---- Data ------------------------------------------------------------------------------------
DATA_CHOICE = "data.dataset"
UPLOAD_KIND = "data.upload_kind"
UPLOAD_FILE = "data.upload_file"
UPLOAD_NAME = "data.upload_name"
UPLOAD_OPTION = "data.upload_option."  # prefix: one widget per upload option, e.g. csv.label
UPLOAD_GENERATION = "data.upload_generation"  # uploads added: a new file box after each one
UPLOAD_PANEL = "data.upload_panel"  # the "Upload a dataset" expander: open until closed
DATA_NOTICE = "data.notice"
DATA_ADD = "data.add"
DATA_GRID = "data.grid"
DATA_SIGNALS = "data.signals"
DATA_TEXT = "data.text"
DATA_TABLE = "data.table"
DATA_BALANCE = "data.balance"
DATA_REMOVE = "data.remove"

# ---- Train -----------------------------------------------------------------------------------
TRAIN_SPEC_SOURCE = "train.spec_source"  # FROM_BUILD or a saved spec name
TRAIN_DATASET = "train.dataset"
TRAIN_SETTING = "train.setting."  # prefix: one widget per TrainConfig field
TRAIN_LENGTH = "train.length"  # "epochs" | "steps"
LAUNCH_GUARD = "train.launch_guard"  # {"fingerprint", "at", "run_id"}: a double click is one run
FIT_CHECK = "train.fit_check"  # (spec and facts, app.fit.FitCheck): one trace per launch
LIVE_CURVES = "train.live"  # the app.series.LiveCurves on screen (shared, immutable: no copy)
LIVE_FIGURE = "train.live_figure"  # (app.live.figure_key, figure): no new rows, no rebuild
TRAIN_NOTICE = "train.notice"
LIVE_NOTICE = "train.live_notice"  # a message from the live panel's own buttons
WATCH_CHOICE = "train.watch"
# the run id a callback asked to show; the page body puts it in the URL
WATCH_REQUEST = "train.watch_request"
WAS_ACTIVE = "train.was_active"  # whether the run on screen was active at the last poll
TRAIN_LAUNCH = "train.launch"
TRAIN_START_WORKER = "train.start_worker"
TRAIN_START_WORKER_LIVE = "train.start_worker_live"
TRAIN_CURVES = "train.curves"
TRAIN_REQUEST = "train."  # prefix + a core.states.RunRequest: the pause / resume / stop buttons
# the Train form's values, copied out of the widgets: Streamlit drops a widget's state when a
# page without it runs, so a page switch would reset them (see pages/train.py keep / restore)
TRAIN_KEPT = "train.kept"
TRAIN_WATCHED = "train.watched"  # the run last on screen, shown again after a page switch
TRAIN_LAUNCHED = "train.launched"  # the "Run N is queued" message, shown once as a toast
TRAIN_INIT_FROM = "train.init_from"  # "Start from run…": None (random weights) or a run id
FROM_BUILD = "__build__"
FROM_RUN = "__run__:"  # + a run id: the model of a finished run (the Sweep page)

# ---- Runs ------------------------------------------------------------------------------------
RUNS_COMPARE = "runs.compare"
RUNS_DETAIL = "runs.detail"
RUNS_CONFIRM_DELETE = "runs.confirm_delete"  # run id waiting for "delete for good"
RUNS_NOTICE = "runs.notice"
RUNS_URL_SEEN = "runs.url_seen"  # the run id last read from the URL (a new one takes over)
RUNS_TABLE = "runs.table"
RUNS_OVERLAY_CHART = "runs.overlay"
RUNS_OPEN_BUILD = "runs.open_build"
RUNS_DELETE = "runs.delete"
RUNS_DELETE_CONFIRM = "runs.delete_confirm"
RUNS_DELETE_CANCEL = "runs.delete_cancel"
RUNS_CONFUSION = "runs.confusion"
RUNS_PER_CLASS = "runs.per_class"

# ---- Explain ---------------------------------------------------------------------------------
EXPLAIN_RUN = "explain.run"
EXPLAIN_SOURCE = "explain.source"  # the test set, its mistakes, an upload or a drawing
EXPLAIN_INDEX = "explain.index"  # test sample number when browsing
EXPLAIN_WRONG_CHOICE = "explain.wrong_index"  # test sample number among the mistakes
EXPLAIN_METHODS = "explain.methods"
EXPLAIN_SANITY = "explain.sanity"  # run the model-randomization trust check too
EXPLAIN_UPLOAD = "explain.upload"
EXPLAIN_CANVAS = "explain.canvas."  # prefix + the clear count: a new key, a clean canvas
EXPLAIN_CANVAS_CLEARS = "explain.canvas_clears"  # times the canvas was cleared
EXPLAIN_STROKE = "explain.stroke"  # brush width on the canvas, in screen pixels
EXPLAIN_CLEAR = "explain.clear"
EXPLAIN_SENTENCE = "explain.sentence"  # text models: a sentence a person types
EXPLAIN_ROW = "explain.row"  # tables: the row a person edits
EXPLAIN_SAMPLE = "explain.sample"
EXPLAIN_TOP3 = "explain.top3"
EXPLAIN_TABS = "explain.tabs"  # one prediction | what it looks for in each class


def explain_class_figure_key(index: int) -> str:
    return f"explain.class_figure.{index}"


def share_report_key(page: str, part: str) -> str:
    """The "Share a report" widgets of a page (part: prepare | download)."""
    return f"{page}.share_report.{part}"


def explain_canvas_key(clears: int) -> str:
    """The drawing canvas after `clears` clears: a new key, a clean canvas."""
    return f"{EXPLAIN_CANVAS}{clears}"


# ---- Deploy ----------------------------------------------------------------------------------
DEPLOY_RUN = "deploy.run"
DEPLOY_EXPORTS = "deploy.exports"  # {"RUN:FORMAT": ExportResult.to_json()} made this session
DEPLOY_RUNTIME = "deploy.runtime"  # onnx | torch for the next server started
DEPLOY_START = "deploy.start"
DEPLOY_NOTICE = "deploy.notice"
DEPLOY_SOURCE = "deploy.source"  # try it with: a test sample, an uploaded image, a typed text
DEPLOY_INDEX = "deploy.index"  # test sample number
DEPLOY_UPLOAD = "deploy.upload"
DEPLOY_TEXT = "deploy.text"
DEPLOY_METHOD = "deploy.method"
DEPLOY_SEND = "deploy.send"
DEPLOY_ANSWER = "deploy.answer"  # the last (prediction, explanation) the server gave


def deploy_export_key(fmt: str) -> str:
    return f"deploy.export.{fmt}"


def deploy_download_key(fmt: str) -> str:
    return f"deploy.download.{fmt}"


def deploy_stop_key(pid: int) -> str:
    return f"deploy.stop.{pid}"


def explain_figure_key(method: str) -> str:
    return f"explain.figure.{method}"


def explain_attention_key(layer: str) -> str:
    return f"explain.attention.{layer}"


# ---- Sweep -----------------------------------------------------------------------------------
SWEEP_SPEC_SOURCE = "sweep.spec_source"  # FROM_BUILD, a saved spec name or FROM_RUN + id
SWEEP_DATASET = "sweep.dataset"
SWEEP_SETTING = "sweep.setting."  # prefix: one widget per base setting shown
SWEEP_PARAMS = "sweep.params"  # the parameter lines, `--param` syntax
SWEEP_OBJECTIVE = "sweep.objective"
SWEEP_SAMPLER = "sweep.sampler"
SWEEP_PRUNER = "sweep.pruner"
SWEEP_TRIALS = "sweep.trials"
SWEEP_MINUTES = "sweep.minutes"  # time limit; 0 = none
SWEEP_START = "sweep.start"
SWEEP_CHOICE = "sweep.choice"  # the sweep on screen
SWEEP_STOP = "sweep.stop"
SWEEP_USE_BEST = "sweep.use_best"
SWEEP_NOTICE = "sweep.notice"
SWEEP_TABLE = "sweep.table"
SWEEP_BEST_CHART = "sweep.best_chart"


def sweep_figure_key(title: str) -> str:
    """One of Optuna's figures on the Sweep page."""
    return f"sweep.figure.{title}"


# ---- Compress --------------------------------------------------------------------------------
COMPRESS_RUN = "compress.run"
COMPRESS_METHOD = "compress.method"  # structured | unstructured | none (int8 only)
COMPRESS_RATIO = "compress.ratio"
COMPRESS_EPOCHS = "compress.epochs"  # fine-tune epochs (a queued child run)
COMPRESS_INT8 = "compress.int8"
COMPRESS_GO = "compress.go"
COMPRESS_NOTICE = "compress.notice"
COMPRESS_SHOWN = "compress.shown"  # the report folder on screen (reports live on disk)
COMPRESS_FINETUNE = "compress.finetune"  # a finished fine-tune of the run, to compare
COMPRESS_COMPARE = "compress.compare"  # the button comparing it with its parent
COMPRESS_COMPARED = "compress.compared"  # {child run id: its --json document} this session
COMPRESS_TABLE = "compress.table"


def compress_table_key(run_id: int) -> str:
    """The before/after table of a fine-tune compared with its parent."""
    return f"{COMPRESS_TABLE}.{run_id}"


# ---- pages, as st.switch_page / st.page_link want them (relative to app/main.py) -------------
PAGE_BUILD = "../pages/build.py"
PAGE_DATA = "../pages/data.py"
PAGE_TRAIN = "../pages/train.py"
PAGE_RUNS = "../pages/runs.py"
PAGE_EXPLAIN = "../pages/explain.py"
PAGE_DEPLOY = "../pages/deploy.py"
PAGE_SWEEP = "../pages/sweep.py"
PAGE_COMPRESS = "../pages/compress.py"

# ---- query parameters (the part of the state that lives in the URL) ---------------------------
QP_RUN = "run"  # Train: the run on screen; Runs: the run in detail; Explain: the run asked
QP_DRAFT = "draft"  # Build: the spec being edited, compressed
QP_SPEC = "spec"  # Build: a saved spec to open ("name" or "name@version")
QP_TRAIN = "train"  # Train: the form's values that differ from the defaults, as JSON
QP_SWEEP = "sweep"  # Sweep: the sweep on screen


def upload_file_key(generation: int) -> str:
    """The Data page's file box; a new generation (after an upload) is an empty box."""
    return f"{UPLOAD_FILE}.{generation}"


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def pop(key: str, default: Any = None) -> Any:
    return st.session_state.pop(key, default)


def notify(key: str, kind: str, message: str) -> None:
    """Leave a message for the next run of a page (after a callback or a page switch)."""
    st.session_state[key] = (kind, message)


def show_notice(key: str) -> None:
    """Show, once, the message left under `key`."""
    notice = st.session_state.pop(key, None)
    if notice:
        kind, message = notice
        show = {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)
        show(md_escape(message))  # notices quote file names, labels, run names: plain text


def query_param(name: str) -> str | None:
    return st.query_params.get(name)


def set_query_param(name: str, value: str | None, *, force: bool = False) -> None:
    """Change the URL. Call it from the page body, not from a widget callback: the browser may
    not see a change sent before the script run starts. `force` re-sends an unchanged value."""
    if value is None:
        if name in st.query_params:
            del st.query_params[name]
    elif force or st.query_params.get(name) != value:
        st.query_params[name] = value
