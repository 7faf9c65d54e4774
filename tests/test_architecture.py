"""The engine runs headless: nothing under core/ may import Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit():
    offenders = [
        str(p.relative_to(CORE)) for p in CORE.rglob("*.py") if "streamlit" in imported_modules(p)
    ]
    assert offenders == [], f"core/ must run headless; these files import streamlit: {offenders}"


def test_the_walk_sees_core_files():
    # guards the test above against silently walking an empty tree
    assert len(list(CORE.rglob("*.py"))) > 5
