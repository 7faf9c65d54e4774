"""CLI progress (tqdm): a bar redrawn in place on a terminal, plain lines in a log."""

from __future__ import annotations

import io
import re

from core.progress import ProgressBar, format_duration


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand: throttling is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_the_bar_redraws_in_place_with_an_eta():
    stream = Terminal()
    bar = ProgressBar(100, label="training", unit="step", stream=stream, min_interval_s=0.0)
    bar.update(50, "loss 0.31")
    bar.close("completed")
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "training" in text and "50/100" in text and " 50%" in text and "loss 0.31" in text
    assert "<" in text  # elapsed<remaining
    assert "100/100" not in text  # it stopped at 50: the bar says so
    assert text.rsplit("\r", 1)[-1].rstrip().endswith("completed]")  # the final state


def test_in_a_log_one_start_line_a_line_per_interval_and_one_closing_line():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(
        1000, label="training", unit="step", stream=stream, log_interval_s=10, clock=clock
    )
    for done in range(1, 1001):
        clock.now += 0.1  # 100 s in all
        bar.update(done, f"loss {1 / done:.3f}")
    bar.close("completed")
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("training:   0% 1/1000")  # the start, as soon as work begins
    assert lines[-1].startswith("training: 100% 1000/1000") and lines[-1].endswith("completed]")
    assert text.count("100%") == 1  # the end is written once, by close()
    elapsed = [_seconds(line) for line in lines[:-1]]
    assert all(b - a >= 10 for a, b in zip(elapsed, elapsed[1:], strict=False))
    assert 9 <= len(lines) <= 12  # about one line per 10 s of a 100 s run


def test_forced_updates_write_now_and_the_end_still_appears_once():
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(3, label="mnist1d", stream=stream, clock=clock)  # as the generator uses it
    bar.update(0, "importing the generator", force=True)
    bar.update(1, "generating 5000 signals", force=True)
    bar.update(3, "saving the cache", force=True)
    bar.close()
    bar.close()  # closing twice writes nothing more
    lines = stream.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == [
        "mnist1d:   0% 0/3",
        "mnist1d:  33% 1/3",
        "mnist1d: 100% 3/3",
    ]
    assert lines[-1].endswith("saving the cache]")  # the last note is kept for the end


def test_a_run_that_ends_early_closes_where_it_stopped():
    stream = io.StringIO()
    bar = ProgressBar(100, label="training", stream=stream, clock=Clock())
    bar.update(10)
    bar.close("paused", done=40)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "40/100" in lines[-1] and lines[-1].endswith("paused]")


def test_durations_read_as_clock_times():
    assert format_duration(5) == "00:05"
    assert format_duration(3725) == "1:02:05"


def _seconds(line: str) -> int:
    minutes, seconds = re.search(r"\[(\d+):(\d+)<", line).groups()
    return int(minutes) * 60 + int(seconds)
