"""Entry point of the `studio` command: one sub-command module per area, one error policy.

Exit codes: 0 success, 1 a user error (one line, no traceback), 2 usage. Anything unexpected
is also one line and exit 1: the full trace goes to a log file the line names.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from core.cli import (
    compress_commands,
    explain_commands,
    export_commands,
    import_commands,
    report_commands,
    run_commands,
    serve_commands,
    spec_commands,
    sweep_commands,
    ui_commands,
)
from core.errors import StudioError

COMMAND_MODULES = (
    spec_commands,
    run_commands,
    explain_commands,
    export_commands,
    ui_commands,
    sweep_commands,
    serve_commands,
    import_commands,
    compress_commands,
    report_commands,
)
ERROR_LOG = "cli-errors.log"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio", description="Model Studio: design, train and explain neural networks."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    if hasattr(sys.stdout, "reconfigure"):  # a spec's lone surrogate must not end the table
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        return int(args.handler(args) or 0)
    except StudioError as error:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `studio metrics 3 --csv | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print(
            "error: out of memory; the input is too large for this machine (see the limits "
            "in the README's safety section)",
            file=sys.stderr,
        )
        return 1
    except Exception as error:  # a bug or a fault nobody foresaw: one line, trace in the log
        where = log_unexpected(error, argv)
        kind = type(error).__name__
        text = one_line(str(error))[:200] or "no message"
        print(
            f"error: unexpected {kind}: {text} (the full trace is in {where}; please report it)",
            file=sys.stderr,
        )
        return 1


def one_line(text: str) -> str:
    """A message on one line: a multi-line message (a library's) is joined with ' | '."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines)


def log_unexpected(error: BaseException, argv: Sequence[str] | None) -> Path | str:
    """Append the command line and the trace of `error` to STUDIO_HOME/logs/cli-errors.log
    (the temp folder when STUDIO_HOME cannot be used); returns the file, or why none."""
    command = " ".join(sys.argv[:1] + list(sys.argv[1:] if argv is None else argv))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    entry = f"---- {stamp} pid {os.getpid()}: {command}\n"
    entry += "".join(traceback.format_exception(error))
    for folder in _log_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / ERROR_LOG
            with path.open("a", encoding="utf-8", errors="backslashreplace") as log:
                log.write(entry)
            return path
        except OSError:
            continue
    return "no log file (none could be written)"


def _log_folders() -> list[Path]:
    folders = []
    try:
        from core.config import get_settings

        folders.append(get_settings().logs_dir)
    except Exception:  # a bad setting must not hide the error being reported
        pass
    return [*folders, Path(tempfile.gettempdir()) / "studio-logs"]


if __name__ == "__main__":
    sys.exit(main())
