"""`studio explain RUN_ID --method ... --index I [--json]`: why a trained run predicted what it did."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.errors import ExplainError
from core.explain import METHODS

if TYPE_CHECKING:
    from core.explain import Explanation

SPLITS = ("test", "val", "train")
RAMP = " .:-=+*#%@"  # light to dark: how much the model relied on a pixel
BARS = "▁▂▃▄▅▆▇█"
ASCII_MAX_SIDE = 32  # larger images are summarized in words only
MAX_STEPS = 2000  # integration steps: more adds minutes and no visible precision


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio explain`."""
    parser = subparsers.add_parser(
        "explain",
        help="explain one prediction of a trained run",
        description=(
            "Explain why a trained run predicted what it did for one sample: the prediction, "
            "its top-3 probabilities, an attribution shaped like the input and a plain-language "
            "summary measured on the model."
        ),
    )
    parser.add_argument("run_id", type=int, metavar="RUN_ID")
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--index", required=True, type=int, help="sample index in the split")
    parser.add_argument("--split", default="test", choices=SPLITS, help="default: test")
    parser.add_argument(
        "--target", type=int, default=None, help="class to explain (default: the predicted one)"
    )
    parser.add_argument(
        "--steps",
        type=integration_steps,
        default=50,
        help=f"integration steps, 1 to {MAX_STEPS} (default 50)",
    )
    parser.add_argument(
        "--no-sanity-check",
        action="store_true",
        help="skip the model-randomization check (about a third of the time)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=run_explain)


def integration_steps(text: str) -> int:
    """--steps: a whole number from 1 to MAX_STEPS (each step is a pass through the model)."""
    try:
        steps = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= steps <= MAX_STEPS:
        raise argparse.ArgumentTypeError(
            f"{steps} is out of range; use 1 to {MAX_STEPS} (50 is usually enough)"
        )
    return steps


def _load_run_model(run_id: int) -> tuple[Any, Any, Any]:
    try:
        from core.runs import load_run_model
    except ImportError as error:  # the runs service is another issue's; say what is missing
        raise ExplainError(f"runs cannot be loaded in this installation ({error})") from error
    return load_run_model(run_id)


def _sample(dataset: Any, split_name: str, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    split = getattr(dataset, split_name)
    size = len(split.y)
    if size == 0:
        raise ExplainError(f"the {split_name} split of {dataset.name!r} is empty")
    if not 0 <= index < size:
        raise ExplainError(
            f"index {index} is out of range; the {split_name} split has {size} samples "
            f"(0–{size - 1})"
        )
    return split.x[index], split.y[index]


def run_explain(args: argparse.Namespace) -> int:
    from core.explain import explain  # Captum loads only when explaining

    model, dataset, _run = _load_run_model(args.run_id)
    if getattr(dataset, "task", "classification") != "classification":
        raise ExplainError(f"run {args.run_id} does regression; explanations are for classifiers")
    x, y = _sample(dataset, args.split, args.index)
    explanation = explain(
        model,
        x,
        method=args.method,
        target=args.target,
        dataset=dataset,
        n_steps=args.steps,
        label=int(y),
        sanity_check=not args.no_sanity_check,
    )
    if args.json:
        document = explanation.to_dict()
        document.update(run_id=args.run_id, split=args.split, index=args.index)
        document["label"] = dataset.class_names[int(y)]
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(explanation, dataset, x) + "\n")
    return 0


def render_text(explanation: Explanation, dataset: Any, x: torch.Tensor) -> str:
    from core.explain.summary import percent

    """The readable report: summary, prediction, top 3, warnings and a small picture."""
    lines = [explanation.summary, ""]
    lines.append(
        f"prediction: {explanation.prediction.label} "
        f"({percent(explanation.prediction.probability)})   method: {explanation.method}"
    )
    lines.append(
        "top 3: "
        + ", ".join(f"{p['label']} {percent(p['probability'])}" for p in explanation.probabilities)
    )
    if explanation.convergence_delta is not None:
        lines.append(f"convergence delta: {explanation.convergence_delta:.3g}")
    lines += [f"warning: {w}" for w in explanation.warnings]
    picture = _picture(explanation, dataset, x)
    if picture:
        lines += ["", *picture]
    return "\n".join(lines)


def _picture(explanation: Explanation, dataset: Any, x: torch.Tensor) -> list[str]:
    from core.explain import position_scores

    scores = position_scores(explanation.attribution, explanation.modality).numpy()
    if explanation.modality == "image" and max(scores.shape) <= ASCII_MAX_SIDE:
        image = np.asarray(dataset.human(x), dtype=np.float32).mean(axis=-1) / 255.0
        return ascii_side_by_side(image, scores)
    if explanation.modality == "signal":
        return ["relied on (per time step): " + sparkline(scores)]
    if explanation.modality == "text" and explanation.tokens:
        ranked = sorted(
            (i for i, t in enumerate(explanation.tokens) if t != "<pad>"), key=lambda i: -scores[i]
        )
        return [
            "words it relied on: "
            + ", ".join(f"{explanation.tokens[i]} ({scores[i]:+.3g})" for i in ranked[:5])
        ]
    return []


def _ramp(values: np.ndarray) -> list[str]:
    """Values in [0, 1] -> rows of ramp characters, each pixel two characters wide when small."""
    width = 2 if values.shape[1] <= 16 else 1
    levels = np.clip((values * (len(RAMP) - 1)).round().astype(int), 0, len(RAMP) - 1)
    return ["".join(RAMP[v] * width for v in row) for row in levels]


def ascii_side_by_side(image: np.ndarray, scores: np.ndarray) -> list[str]:
    """The input (left) and what the model relied on (right, positive evidence only)."""
    support = np.clip(scores, 0, None)
    peak = support.max()
    heat = support / peak if peak > 0 else support
    left, right = _ramp(np.clip(image, 0, 1)), _ramp(heat)
    header = "input".ljust(len(left[0])) + "   relied on (darker = more)"
    return [header, *(f"{a}   {b}" for a, b in zip(left, right, strict=True))]


def sparkline(scores: np.ndarray) -> str:
    support = np.clip(scores.ravel(), 0, None)
    peak = support.max()
    levels = (
        (support / peak * (len(BARS) - 1)).round().astype(int) if peak > 0 else support.astype(int)
    )
    return "".join(BARS[v] for v in levels)
