"""Saved, named and versioned model specs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import NotFoundError, TrainingError
from core.runs.views import SpecView, _spec_view
from core.store import db
from core.store import repository as repo

if TYPE_CHECKING:
    pass


def save_spec(*, name: str, spec: dict) -> SpecView:
    """Save a named spec; saving an existing name adds version n+1."""
    name = (name or "").strip()
    if not name:
        raise TrainingError("a saved spec needs a name; give it one such as 'my-cnn'")
    return _spec_view(db.call(repo.save_spec, name=name, spec=spec))


def list_specs(*, all_versions: bool = False) -> list[SpecView]:
    """Saved specs: the latest version of each name (every version with all_versions=True)."""
    rows = db.call(repo.list_specs, all_versions=all_versions, readonly=True)
    return [_spec_view(row) for row in rows]


def get_spec(name: str, *, version: int | None = None) -> SpecView:
    """A saved spec by name, latest version unless `version` is given; NotFoundError if absent."""
    row = db.call(repo.get_spec, name=name, version=version, readonly=True)
    if row is None:
        which = f"version {version} of " if version is not None else ""
        raise NotFoundError(f"there is no saved spec {which}{name!r}")
    return _spec_view(row)
