"""Progress with ETA for the CLI, drawn by tqdm; writes to stderr so stdout stays the result.

On a terminal tqdm redraws one bar in place. In a log (stderr is a file or a pipe) a bar drawn
with carriage returns is noise, so the same tqdm line is written as plain lines instead: one
when work starts, then at most one every `log_interval_s` seconds, and one closing line — the
only line that shows the end, so a log never carries 100% twice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

# a log line: no bar glyphs, just where it is, how long it took and how long is left
LOG_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)


def format_duration(seconds: float) -> str:
    """`mm:ss`, or `h:mm:ss` past an hour (tqdm's own clock format)."""
    return tqdm.format_interval(max(0, int(round(seconds))))


class ProgressBar:
    """`bar.update(done, note)` shows `done` of `total` with an ETA; `bar.close(note)` ends it.

    `min_interval_s` throttles redraws on a terminal, `log_interval_s` the lines in a log.
    `clock` is injectable so the log throttling can be tested without waiting."""

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        min_interval_s: float = 0.2,
        log_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(1, total)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_interval_s = log_interval_s
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.note = ""
        self._last_line: float | None = None  # when the log got its latest line
        self._closed = False
        self._bar: tqdm | None = None
        if self.interactive:
            self._bar = tqdm(
                total=self.total,
                desc=label or None,
                unit=unit,
                file=self.stream,
                mininterval=min_interval_s,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        """Move to `done`; `force` draws now instead of waiting for the interval."""
        self.done = done
        self.note = note or self.note
        if self._bar is not None:
            self._bar.set_postfix_str(self.note, refresh=False)
            self._bar.update(done - self._bar.n)
            if force:
                self._bar.refresh()
            return
        if done >= self.total:
            return  # the end is close()'s line, so it appears once
        now = self.clock()
        if force or self._last_line is None or now - self._last_line >= self.log_interval_s:
            self._write_line(now)

    def close(self, note: str = "", *, done: int | None = None) -> None:
        """Draw the final state once (`done` where the work ended short of or past `total`)."""
        if self._closed:
            return
        self._closed = True
        self.done = self.done if done is None else done
        self.note = note or self.note
        if self._bar is not None:
            self._bar.set_postfix_str(self.note, refresh=False)
            self._bar.update(self.done - self._bar.n)
            self._bar.close()
            return
        self._write_line(self.clock())

    def render(self, elapsed: float | None = None) -> str:
        """The plain line for the current state (the log face)."""
        elapsed = self.clock() - self.started if elapsed is None else elapsed
        return tqdm.format_meter(
            self.done,
            self.total,
            elapsed,
            prefix=self.label,
            unit=self.unit,
            postfix=self.note or None,
            bar_format=LOG_FORMAT if self.label else LOG_FORMAT.removeprefix("{desc}: "),
        )

    def _write_line(self, now: float) -> None:
        self._last_line = now
        self.stream.write(self.render(now - self.started) + "\n")
        self.stream.flush()
