"""The CLI progress bar: ETA in place on a terminal, plain lines in a log."""

from __future__ import annotations

import io

from core.progress import ProgressBar, format_duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_redraws_in_place_with_an_eta():
    stream = Terminal()
    bar = ProgressBar(100, label="train", stream=stream, min_interval_s=0.0)
    bar.update(50, "loss 0.31")
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r") and "\x1b[K" in text
    assert "50/100" in text and "50%" in text and "<" in text and "loss 0.31" in text
    assert text.endswith("\n")


def test_in_a_log_the_bar_writes_whole_lines_and_not_often():
    stream = io.StringIO()
    bar = ProgressBar(1000, label="train", stream=stream, log_interval_s=3600)
    for done in range(1, 1001):
        bar.update(done)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
    assert len(lines) <= 3 and "1000/1000" in lines[-1]


def test_durations_read_as_clock_times():
    assert format_duration(5) == "00:05"
    assert format_duration(3725) == "1:02:05"
