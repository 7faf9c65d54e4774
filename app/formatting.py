"""Numbers and shapes written the way a person reads them (pure, shared by pages and figures)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def shape_text(shape: Sequence[int] | None) -> str:
    """(16, 8, 8) -> "16×8×8"; None -> "?"."""
    if shape is None:
        return "?"
    return "×".join(str(int(d)) for d in shape) or "scalar"


def count_text(value: float | int | None) -> str:
    """12345 -> "12.3k", 4_200_000 -> "4.2M"; small numbers stay exact."""
    if value is None:
        return "—"
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    # round to 3 significant digits first, then pick the unit: 999_999 is "1M", not "1e+03k"
    rounded = float(f"{value:.3g}")
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(rounded) >= limit:
            scaled = rounded / limit
            return f"{scaled:,.0f}{suffix}" if abs(scaled) >= 1000 else f"{scaled:.3g}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{rounded:g}"


def duration_text(seconds: float | None) -> str:
    """75 -> "1 min 15 s"; None -> "—"."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def bytes_text(value: int | None) -> str:
    """17179869184 -> "16 GiB"."""
    if not value:
        return "—"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} TiB"


def eta_seconds(done: int, total: int | None, elapsed_s: float | None) -> float | None:
    """Time left at the pace so far; None until there is a pace to go by."""
    if not total or not done or not elapsed_s or elapsed_s <= 0 or done >= total:
        return 0.0 if total and done >= total else None
    return elapsed_s * (total - done) / done


def parse_int_list(text: str) -> list[int]:
    """ "3, 32, 32" or "3x32x32" -> [3, 32, 32]; ValueError naming the bad part."""
    parts = [p for p in text.replace("×", ",").replace("x", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError("write whole numbers separated by commas, such as 3, 32, 32")
    numbers = []
    for part in parts:
        try:
            numbers.append(int(part))
        except ValueError:
            raise ValueError(
                f"{part!r} is not a whole number; write numbers separated by commas, such as 3, 3"
            ) from None
    return numbers
