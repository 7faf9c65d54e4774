"""`studio serve`: the standalone app (core/serve/standalone.py) plus what only the studio has:
POST /explain (the `studio explain --json` document) and a torch runtime.

A run is served from a serving folder laid out like a bundle (contract.json, model.onnx,
model.safetensors, spec.json), written once per checkpoint by the studio's own export code;
the server process then loads only ONNX and safetensors files, never a pickle.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from core.config import get_settings
from core.errors import NotFoundError, StudioError
from core.serve import standalone
from core.serve.standalone import CONTRACT_FILE, MODEL_FILE, RequestError

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"  # the name the bundle export gives it
SPEC_FILE = "spec.json"
STAMP_FILE = "source.json"  # which checkpoint a serving folder was made from
RUNTIMES = ("onnx", "torch")
PARITY_SAMPLES = 8  # test samples the ONNX file is checked on when it is written
EXPLAIN_DEFAULTS = {"method": "integrated_gradients", "steps": 50, "sanity_check": True}
MAX_EXPLAIN_STEPS = 2000


class ServeError(StudioError):
    """A run or folder that cannot be served (no checkpoint, not a bundle, unknown runtime)."""


# ---- what is served -------------------------------------------------------------------------


def serving_folder(run_id: int) -> Path:
    return get_settings().exports_dir / f"run-{run_id}" / "serve"


def prepare_run(run_id: int, *, onnx: bool = True) -> Path:
    """The serving folder of a run, written from its latest checkpoint and reused while that
    checkpoint is the latest: contract, safetensors weights, spec and (with `onnx`) the
    parity-checked ONNX file."""
    from core.runs.reading import get_run, list_checkpoints

    run = get_run(run_id)
    checkpoints = list_checkpoints(run.id)
    if not checkpoints:
        raise ServeError(
            f"run {run.id} ({run.status}) has no checkpoint to serve; train it to the end of an "
            "epoch first"
        )
    stamp = {"run_id": run.id, "checkpoint": str(checkpoints[-1].path)}
    folder = serving_folder(run.id)
    fresh = _stamp(folder) == stamp
    if not fresh:
        for name in (STAMP_FILE, MODEL_FILE):
            (folder / name).unlink(missing_ok=True)
    needed = [CONTRACT_FILE, WEIGHTS_FILE, SPEC_FILE] + ([MODEL_FILE] if onnx else [])
    if fresh and all((folder / name).is_file() for name in needed):
        return folder
    write_serving_folder(run.id, folder, onnx=onnx)
    _write_json(folder / STAMP_FILE, stamp)
    return folder


def _stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_serving_folder(run_id: int, folder: Path, *, onnx: bool = True) -> None:
    """contract.json, model.safetensors, spec.json and (with `onnx`) model.onnx of a run."""
    from safetensors.torch import save_file

    from core.runs.models import load_run_model
    from core.serve.contract import contract_for

    model, dataset, run = load_run_model(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    contract = contract_for(dataset, run_id=run.id, model_name=run.spec.get("name"))
    _write_json(folder / CONTRACT_FILE, contract)
    _write_json(folder / SPEC_FILE, run.spec)
    state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    if onnx:
        _export_onnx(model, dataset.facts, folder / MODEL_FILE, dataset.test.x[:PARITY_SAMPLES])


def _export_onnx(model: Any, facts: Any, path: Path, samples: Any) -> float:
    """The studio's ONNX export with its parity check (core.export)."""
    from core.export.onnx import export_onnx

    return export_onnx(model, facts, path, samples)


def _write_json(path: Path, document: Any) -> None:
    temporary = path.with_suffix(".partial")
    temporary.write_text(json.dumps(document), encoding="utf-8")
    temporary.replace(path)


def resolve_target(target: str | int | Path, *, onnx: bool = True) -> tuple[Path, int | None]:
    """RUN_ID -> its serving folder (made if needed); a folder -> itself, checked to be a bundle."""
    text = str(target).strip()
    if text.isdigit():
        return prepare_run(int(text), onnx=onnx), int(text)
    folder = Path(text).expanduser()
    if not (folder / CONTRACT_FILE).is_file():
        raise ServeError(
            f"{text!r} is neither a run id nor a bundle folder (no {CONTRACT_FILE} in it); "
            "use `studio runs` for run ids or `studio export RUN_ID --format bundle`"
        )
    return folder.resolve(), standalone.read_contract(folder).get("run_id")


# ---- the torch side: runtime and explanations -----------------------------------------------


def load_torch_model(folder: Path) -> torch.nn.Module:
    """The model rebuilt from spec.json and the contract's facts, weights from safetensors."""
    from safetensors.torch import load_file

    from core.builder import build_model
    from core.train.checkpoint import load_weights

    for name in (SPEC_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ServeError(f"{folder} has no {name}; the torch runtime and /explain need it")
    spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
    model = build_model(spec, facts_of(standalone.read_contract(folder)))
    load_weights(model, load_file(str(folder / WEIGHTS_FILE)), folder / WEIGHTS_FILE)
    return model.eval()


def facts_of(contract: dict[str, Any]) -> Any:
    """The ModelFacts a contract describes (what the model was built for)."""
    from core.facts import ModelFacts

    vocab = contract["input"].get("vocab_size")
    classes = len(contract["class_names"]) if contract["task"] == "classification" else 1
    return ModelFacts(
        input_shape=tuple(contract["shape"]),
        num_classes=classes,
        vocab_size=vocab,
        modality=contract["kind"],
    )


class TorchRuntime:
    """PyTorch eager on the CPU, weights from safetensors: a batch in, outputs out."""

    name = "torch"

    def __init__(self, folder: Path) -> None:
        self.model = load_torch_model(folder)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).float().numpy()


class Explainer:
    """`core.explain` on a model of its own (Captum hooks never touch the predicting one),
    with the run's dataset for class names and baselines; one explanation at a time.

    A bundle (`bundle=True`) explains on a machine that cannot load the run's dataset too: its
    contract and stored Gradient SHAP baselines stand in for it (core.serve.explain_data)."""

    def __init__(self, folder: Path, contract: dict[str, Any], *, bundle: bool = False) -> None:
        self.folder, self.contract, self.bundle = folder, contract, bundle
        self.lock = threading.Lock()
        self.model: Any = None
        self.dataset: Any = None

    def _load(self) -> None:
        if self.model is None:
            self.model = load_torch_model(self.folder)
        if self.dataset is None:
            self.dataset = self._dataset()

    def _dataset(self) -> Any:
        """The run's dataset where this machine loads it, else (a bundle) its stand-in; a
        bundle also takes the stand-in when a dataset of that name here is another one."""
        from core.data import load_dataset
        from core.serve.explain_data import describes

        try:
            dataset = load_dataset(self.contract["dataset"])
        except (StudioError, OSError) as error:
            if self.bundle:
                return self._stand_in()
            raise RequestError(
                503,
                "dataset",
                f"explanations need the run's dataset {self.contract['dataset']!r}, which "
                f"this machine cannot load ({error})",
            ) from None
        if self.bundle and not describes(dataset, self.contract):
            return self._stand_in()
        return dataset

    def _stand_in(self) -> Any:
        from core.serve.explain_data import BaselinesError, bundle_dataset

        try:
            return bundle_dataset(self.folder, self.contract)
        except BaselinesError as error:
            raise RequestError(503, "dataset", str(error)) from None

    def explain(self, x: np.ndarray, options: dict[str, Any]) -> dict[str, Any]:
        import torch

        from core.explain import explain
        from core.serve.explain_data import missing_baselines

        with self.lock:
            self._load()
            missing = missing_baselines(self.dataset, options["method"])
            if missing:
                raise RequestError(503, "method", missing)
            explanation = explain(
                self.model,
                torch.from_numpy(np.ascontiguousarray(x)),
                method=options["method"],
                target=options.get("target"),
                dataset=self.dataset,
                n_steps=options["steps"],
                sanity_check=options["sanity_check"],
            )
        document = explanation.to_dict()
        document["run_id"] = self.contract.get("run_id")
        return document


def explain_options(payload: dict[str, Any], *, classes: int) -> dict[str, Any]:
    """The options of a /explain body, checked; RequestError naming the field otherwise."""
    from core.explain import METHODS

    options = {**EXPLAIN_DEFAULTS, **{k: payload[k] for k in EXPLAIN_DEFAULTS if k in payload}}
    if options["method"] not in METHODS:
        raise RequestError(
            422, "method", f"expected one of {', '.join(METHODS)}; got {options['method']!r}"
        )
    steps = options["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_EXPLAIN_STEPS:
        raise RequestError(422, "steps", f"expected a whole number from 1 to {MAX_EXPLAIN_STEPS}")
    if not isinstance(options["sanity_check"], bool):
        raise RequestError(422, "sanity_check", "expected true or false")
    target = payload.get("target")
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes
    ):
        raise RequestError(422, "target", f"expected a class index from 0 to {classes - 1}")
    options["target"] = target
    return options


def add_explain_route(app: FastAPI, explainer: Explainer) -> None:
    preprocessor: standalone.Preprocessor = app.state.preprocessor

    @app.post("/explain")
    async def explain_route(request: Request) -> dict[str, Any]:
        """{"input": sample, "method": ...} (or a multipart image `file` with a `method`
        field) -> the `studio explain --json` document."""
        if explainer.contract["task"] != "classification":
            raise RequestError(
                422, "input", "explanations are for classifiers; this model does regression"
            )
        if standalone.is_multipart(request):
            x, fields = await standalone.read_image_form(request, preprocessor)
            payload: Any = form_options(fields)
        else:
            payload = await standalone.read_body_json(request)
            if not isinstance(payload, dict) or "input" not in payload:
                raise RequestError(
                    422, "input", 'expected an object {"input": sample, "method": ...}'
                )
            x = None
        options = explain_options(payload, classes=len(preprocessor.class_names))
        if x is None:
            x = preprocessor.sample(payload["input"], "input")
        return await run_in_threadpool(explainer.explain, x, options)


def form_options(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart text fields -> the JSON options they stand for ("50" -> 50, "false" -> False)."""
    options: dict[str, Any] = {}
    for name, text in fields.items():
        if name in ("steps", "target"):
            options[name] = int(text) if text.strip().isdigit() else text
        elif name == "sanity_check":
            options[name] = {"true": True, "false": False}.get(text.strip().lower(), text)
        else:
            options[name] = text
    return options


def create_studio_app(target: str | int | Path, *, runtime: str = "onnx") -> FastAPI:
    """The app `studio serve` runs: predictions (onnx or torch) and explanations."""
    if runtime not in RUNTIMES:
        raise ServeError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    folder, _run_id = resolve_target(target, onnx=runtime == "onnx")
    bundle = not str(target).strip().isdigit()  # a run's own serving folder has its dataset
    settings = get_settings()
    engine = TorchRuntime(folder) if runtime == "torch" else None
    try:
        app = standalone.create_app(
            folder,
            runtime=engine,
            api_key=settings.api_key,
            max_body_bytes=settings.serve_max_body_bytes,
            max_samples=settings.serve_max_samples,
        )
    except standalone.BundleError as error:
        raise ServeError(str(error)) from None
    app.state.explainer = Explainer(folder, app.state.contract, bundle=bundle)
    add_explain_route(app, app.state.explainer)
    return app


def run_id_of(target: str | int | Path) -> int | None:
    """The run a target serves, without preparing anything (for listings)."""
    text = str(target).strip()
    if text.isdigit():
        return int(text)
    try:
        return standalone.read_contract(Path(text)).get("run_id")
    except (OSError, ValueError, standalone.BundleError, NotFoundError):
        return None
