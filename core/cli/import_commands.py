"""`studio import`: PyTorch source -> model spec (torch.fx), the Build page's "Import code"."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli.spec_commands import parse_shape
from core.errors import StudioError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `import`; it sets `handler=fn(args) -> exit code`."""
    command = subparsers.add_parser(
        "import",
        help="turn a PyTorch nn.Module class into a model spec (runs the file)",
        description="Trace an nn.Module class that takes no arguments with torch.fx and write "
        "the model spec it stands for. The file is executed: import only code you trust.",
    )
    command.add_argument("model", metavar="MODEL.py", help="the Python file with the class")
    command.add_argument(
        "--class", dest="class_name", metavar="NAME", help="the class (default: the last one)"
    )
    command.add_argument(
        "--input-shape",
        metavar="3,32,32",
        type=parse_shape,
        help="sample shape without the batch: the spec is then checked layer by layer "
        "(default: the `# x: (batch, ...)` comment that `studio code` writes, if any)",
    )
    command.add_argument("-o", "--output", metavar="SPEC.json", help="write here, not stdout")
    command.set_defaults(handler=run_import)


def run_import(args: argparse.Namespace) -> int:
    from core.importer import import_source

    path = Path(args.model)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StudioError(f"cannot read {path}: {error}") from None
    imported = import_source(
        source, class_name=args.class_name, filename=path.name, input_shape=args.input_shape
    )
    text = json.dumps(imported.spec, indent=2) + "\n"
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        layers = len(imported.spec["layers"])
        print(
            f"{imported.class_name}: {layers} layers, {imported.params:,} parameters -> "
            f"{args.output}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(text)
    return 0
