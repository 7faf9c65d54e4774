"""Ready-made model specs, one JSON file each, with a sentence on what each is for.

Each file is a spec document (name, input_shape, layers) plus "description" and the "dataset"
it was designed for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import NotFoundError

TEMPLATES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    spec: dict[str, Any] = field(compare=False)
    dataset: str | None = None  # the dataset it was designed for


def list_templates() -> list[Template]:
    """Every shipped template, sorted by name."""
    return [_read(path) for path in sorted(TEMPLATES_DIR.glob("*.json"))]


def get_template(name: str) -> Template:
    """The template `name` (a copy of its spec: callers may edit it); NotFoundError otherwise."""
    path = TEMPLATES_DIR / f"{name}.json"
    if not path.is_file() or "/" in name or "\\" in name:
        known = ", ".join(t.name for t in list_templates())
        raise NotFoundError(f"no template named {name!r}; templates: {known}")
    return _read(path)


def _read(path: Path) -> Template:
    spec = json.loads(path.read_text(encoding="utf-8"))
    return Template(
        name=path.stem,
        description=spec.get("description", ""),
        spec=spec,
        dataset=spec.get("dataset"),
    )
