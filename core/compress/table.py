"""The before/after table in words and numbers a person reads: one row per figure.

Pure functions over the `studio compress --json` document, shared by the CLI's text table and
the Compress page's figure, so both say the same thing.
"""

from __future__ import annotations

from typing import Any

ROWS = (  # (label, key in before/after, formatter)
    ("parameters", "params", "count"),
    ("non-zero parameters", "nonzero_params", "count"),
    ("FLOPs per sample", "flops", "count"),
    ("size on disk", "bytes", "bytes"),
    ("CPU latency, batch 1", "latency_ms.batch_1", "ms"),
    ("CPU latency, batch 64", "latency_ms.batch_64", "ms"),
    ("test accuracy", "test_accuracy", "percent"),
)


def _value(figures: dict[str, Any], key: str) -> float | None:
    value: Any = figures
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def shown(value: float | None, kind: str) -> str:
    """A figure as text: 38.4k, 152 KB, 0.28 ms, 97.8%."""
    if value is None:
        return "-"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "ms":
        return f"{value:.3g} ms"
    if kind == "bytes":
        for unit, size in (("MB", 1e6), ("KB", 1e3)):
            if value >= size * 0.9995:
                return f"{value / size:.3g} {unit}"
        return f"{int(value)} B"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size * 0.9995:  # 999,680 is "1M", not "1e+03k"
            return f"{value / size:.3g}{unit}"
    return f"{int(value)}"


def table_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """[{"figure", "before", "after", "ratio"}] for each row; accuracy's ratio is the change
    in points, the others after / before."""
    rows = []
    for label, key, kind in ROWS:
        before, after = _value(result["before"], key), _value(result["after"], key)
        if before is None or after is None:
            change = "-"
        elif kind == "percent":
            change = f"{(after - before) * 100:+.1f} pt"
        else:
            change = f"{after / before:.2f}x" if before else "-"
        rows.append(
            {
                "figure": label,
                "before": shown(before, kind),
                "after": shown(after, kind),
                "ratio": change,
            }
        )
    return rows
