"""Every test runs against its own STUDIO_HOME and SQLite file, never ~/.studio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pg import backend, postgres_server  # noqa: F401  (fixtures: tests/pg.py)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def studio_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("studio_home")
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
    return home
