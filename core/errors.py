"""Errors a person can act on.

Every message says what was wrong, where, and what would be right. The UI and the CLI show
the message as it is and never a traceback.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base of every error whose message is meant for the person using the studio."""


class SettingsError(StudioError):
    """A bad configuration value: an environment variable or a run setting."""


class SpecError(StudioError):
    """A model spec that cannot be built; names the layer by index, type and id."""

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        layer_type: str | None = None,
        layer_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        self.layer_type = layer_type
        self.layer_id = layer_id


class DataError(StudioError):
    """A dataset that cannot be loaded or an upload that was refused."""


class TrainingError(StudioError):
    """A run that cannot start or had to stop (NaN loss, out of memory, ...)."""


class NotFoundError(StudioError):
    """A run, spec, dataset or checkpoint that does not exist."""


class ExplainError(StudioError):
    """An explanation that cannot be computed for this model or sample."""


class CompressError(StudioError):
    """A compression that cannot be done: a bad ratio, a run without a checkpoint, a layer
    that cannot be pruned as asked."""


class ExportError(StudioError):
    """A model that cannot be exported, or whose exported file does not answer as it does."""


class ReportError(StudioError):
    """A report that cannot be built or written (names the run, the file, what to do)."""
