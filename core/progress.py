"""A text progress bar with ETA for the CLI; writes to stderr so stdout stays the result."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """`bar.update(done, note)` redraws at most every `min_interval_s` seconds.

    On a terminal the bar redraws in place; in a log file (not a TTY) it writes a plain line at
    most every `log_interval_s` seconds instead, so logs stay readable."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        stream: TextIO | None = None,
        width: int = 30,
        min_interval_s: float = 0.2,
        log_interval_s: float = 10.0,
    ) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval_s = min_interval_s if self.interactive else log_interval_s
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self.done = 0

    def eta_s(self) -> float | None:
        if self.done <= 0:
            return None
        elapsed = time.perf_counter() - self.started
        return elapsed / self.done * (self.total - self.done)

    def render(self, note: str = "") -> str:
        fraction = min(1.0, self.done / self.total)
        filled = int(fraction * self.width)
        eta = self.eta_s()
        eta_text = "--:--" if eta is None else format_duration(eta)
        elapsed = format_duration(time.perf_counter() - self.started)
        bar = "#" * filled + "-" * (self.width - filled)
        parts = [
            self.label,
            f"[{bar}]",
            f"{fraction:4.0%}",
            f"{self.done}/{self.total}",
            f"{elapsed}<{eta_text}",
            note,
        ]
        return " ".join(p for p in parts if p)

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        self.done = done
        now = time.perf_counter()
        finishing = done >= self.total and self.interactive  # a log gets its last line from close()
        if not force and now - self._last_draw < self.min_interval_s and not finishing:
            return
        self._last_draw = now
        if self.interactive:
            self.stream.write("\r" + self.render(note) + "\x1b[K")
        else:
            self.stream.write(self.render(note) + "\n")
        self.stream.flush()

    def close(self, note: str = "") -> None:
        self.update(self.done, note, force=True)
        if self.interactive:
            self.stream.write("\n")
        self.stream.flush()
