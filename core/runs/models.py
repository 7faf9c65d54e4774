"""Loading a trained run's model back from its checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import NotFoundError
from core.runs.reading import get_run, list_checkpoints
from core.runs.views import RunView

if TYPE_CHECKING:
    from torch import nn

    from core.data import Dataset
    from core.facts import ModelFacts


def run_facts(run_id: int) -> ModelFacts:
    """What a saved run's model reads and scores (input shape, classes, vocabulary, dtype),
    from its dataset's description: no tensors are loaded."""
    from core.data import describe_dataset

    return describe_dataset(get_run(run_id).dataset).facts


def load_run_model(run_id: int, *, which: str = "latest") -> tuple[nn.Module, Dataset, RunView]:
    """Rebuild a run's model from its latest (or "best" validation loss) checkpoint, loaded
    with weights_only=True; the model is in eval mode on the CPU."""
    from core.builder import build_model
    from core.data import load_dataset
    from core.train.checkpoint import load_checkpoint, load_weights

    if which not in ("latest", "best"):
        raise ValueError(f"which={which!r}; use 'latest' or 'best'")
    run = get_run(run_id)
    checkpoints = list_checkpoints(run.id)
    if not checkpoints:
        raise NotFoundError(
            f"run {run.id} ({run.status}) has no checkpoint yet; one is written at the first epoch end"
        )
    chosen = checkpoints[-1]
    if which == "best":
        scored = [c for c in checkpoints if c.metrics.get("val_loss") is not None]
        chosen = min(scored, key=lambda c: c.metrics["val_loss"]) if scored else chosen
    data = load_dataset(run.dataset)
    model = build_model(run.spec, data.facts)
    state = load_checkpoint(chosen.path)
    load_weights(model, state["model"], chosen.path)
    model.eval()
    return model, data, run
