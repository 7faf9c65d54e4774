"""The service tests share one STUDIO_HOME and one trained run per module: training is the
slow part, and each test compresses into its own new folder, so they cannot disturb each other."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def studio_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("studio_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
        yield home
