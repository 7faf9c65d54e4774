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


RUN_STATUS_WORDS = {"queued", "running", "paused", "completed", "failed", "cancelled", "pruned"}
STATUS_HOME = CORE / "states.py"


def status_literals(path: Path) -> list[tuple[int, str]]:
    """(line, word) of every run status spelled as a bare string in a comparison, a call's
    keyword `status=`, or a collection compared against (docstrings and messages are fine)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            candidates = [node.left, *node.comparators]
        elif isinstance(node, ast.keyword) and node.arg in ("status", "release_status"):
            candidates = [node.value]
        for candidate in candidates:
            parts = (
                candidate.elts
                if isinstance(candidate, ast.Tuple | ast.List | ast.Set)
                else [candidate]
            )
            for part in parts:
                if isinstance(part, ast.Constant) and part.value in RUN_STATUS_WORDS:
                    found.append((part.lineno, part.value))
    return found


def test_run_statuses_are_spelled_only_in_core_states():
    sources = [*CORE.rglob("*.py"), *(CORE.parent / "app").rglob("*.py")]
    sources += list((CORE.parent / "pages").rglob("*.py"))
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line} {word!r}"
        for path in sources
        if path != STATUS_HOME and "migrations" not in path.parts
        for line, word in status_literals(path)
    ]
    assert offenders == [], f"use core.states.RunStatus instead of these literals: {offenders}"


WIDGET_KEY_FILES = [
    *sorted((CORE.parent / "pages").glob("*.py")),
    CORE.parent / "app" / "widgets.py",
]


def literal_widget_keys(path: Path) -> list[str]:
    """`key="..."` or `key=f"..."` in a call: a session-state key spelled outside app/state.py."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}:{node.value.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.keyword)
        and node.arg == "key"
        and (
            isinstance(node.value, ast.JoinedStr)
            or (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))
        )
    ]


def test_widget_keys_come_from_app_state():
    assert len(WIDGET_KEY_FILES) > 3  # the pages are really walked
    offenders = [where for path in WIDGET_KEY_FILES for where in literal_widget_keys(path)]
    assert offenders == [], f"name these widget keys in app/state.py: {offenders}"


def test_the_widget_key_check_sees_literals(tmp_path):
    sample = tmp_path / "page.py"
    sample.write_text('st.button("a", key="x")\nst.button("b", key=f"y.{z}")\nsorted(k, key=len)\n')
    assert len(literal_widget_keys(sample)) == 2
