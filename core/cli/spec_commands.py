"""`studio check` (shapes, parameters, FLOPs per layer) and `studio code` (PyTorch source)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from core.errors import SpecError, StudioError
from core.facts import ModelFacts


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `check` and `code`; each sets `handler=fn(args) -> exit code`."""
    check = subparsers.add_parser(
        "check",
        help="check a model spec: shape, parameters and FLOPs of every layer",
        description="Trace a model spec layer by layer without allocating weights. Exit 1 with "
        "the first problem when the spec is not valid.",
    )
    add_spec_arguments(check)
    check.add_argument("--json", action="store_true", help="print a JSON document for scripts")
    check.set_defaults(handler=run_check)

    code = subparsers.add_parser(
        "code",
        help="export a model spec as a standalone PyTorch source file",
        description="Write one readable PyTorch file (an nn.Module class) for a model spec.",
    )
    add_spec_arguments(code)
    code.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    code.set_defaults(handler=run_code)


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC.json", help="the model spec file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset", metavar="NAME", help="take the input shape and classes from this dataset"
    )
    source.add_argument(
        "--input-shape",
        metavar="3,32,32",
        type=parse_shape,
        help="sample shape without the batch (when the spec has no input_shape)",
    )
    parser.add_argument(
        "--num-classes",
        metavar="N",
        type=positive_int,
        help="outputs of a last Linear without out_features (no dataset)",
    )
    parser.add_argument(
        "--vocab-size",
        metavar="N",
        type=positive_int,
        help="vocabulary size for an Embedding without num_embeddings",
    )


def parse_shape(text: str) -> tuple[int, ...]:
    text = text.strip().strip("[]()")
    ok = re.fullmatch(r"\d+(\s*[,x]\s*\d+)*", text) is not None
    shape = tuple(int(p) for p in re.split(r"\s*[,x]\s*", text)) if ok else ()
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a shape; write positive sizes separated by commas, e.g. 3,32,32"
        )
    return shape


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def facts_from_args(args: argparse.Namespace) -> ModelFacts:
    """The model's facts from --dataset (--num-classes / --vocab-size override it), or from
    --input-shape and the explicit options."""
    if args.dataset:
        from dataclasses import replace

        from core.data import describe_dataset  # the dataset registry loads lazily

        facts = describe_dataset(args.dataset).facts
        return replace(
            facts,
            num_classes=args.num_classes or facts.num_classes or None,
            vocab_size=args.vocab_size or facts.vocab_size,
        )
    return ModelFacts.from_input_shape(
        args.input_shape, num_classes=args.num_classes, vocab_size=args.vocab_size
    )


def run_check(args: argparse.Namespace) -> int:
    from core.builder import Trace, trace
    from core.spec import load_spec

    facts = facts_from_args(args)
    try:
        spec = load_spec(args.spec)
    except SpecError as error:
        traced = Trace.failed(error)
    else:
        # with a dataset: ready to train on it, as `studio train` requires
        traced = trace(spec, facts, finished=bool(args.dataset))
    from core.advice import advise

    advice = advise(traced) if traced.layers else []
    if args.json:
        document = traced.to_dict()
        document["advice"] = [
            {"index": a.index, "type": a.layer_type, "message": a.message} for a in advice
        ]
        print(compact_json(document))
    elif traced.layers or traced.ok or (traced.error and traced.error.index is not None):
        print(format_table(traced))  # a problem with the document itself has no table
    for item in [] if args.json else advice:  # valid models that will not learn as meant
        print(f"advice: layer {item.index} {item.layer_type}: {item.message}", file=sys.stderr)
    if not traced.ok:
        print(f"error: {traced.error}", file=sys.stderr)
        return 1
    return 0


def run_code(args: argparse.Namespace) -> int:
    from core.codegen import generate_code
    from core.spec import load_spec

    code = generate_code(load_spec(args.spec), facts_from_args(args))
    if args.output:
        try:
            Path(args.output).write_text(code, encoding="utf-8")
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise StudioError(
                f"cannot write {args.output}: {reason}; choose a file in a folder that exists"
            ) from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(code)
    return 0


def format_table(traced) -> str:
    """The readable `studio check` table: one row per traced layer, then totals or the error."""
    from core.layers.shapes import fmt

    header = ("#", "name", "type", "output shape", "params", "FLOPs")
    rows = [
        (str(t.index), t.name, t.type, fmt(t.output_shape), f"{t.params:,}", human(t.flops))
        for t in traced.layers
    ]
    error = traced.error
    if error is not None and error.index is not None:
        rows.append((str(error.index), error.layer_id or "", error.layer_type or "?", "✗", "", ""))
    rows.append(
        (
            "",
            "total",
            "",
            fmt(traced.output_shape) if traced.ok else "",
            f"{traced.params:,}",
            human(traced.flops),
        )
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {0, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    shown_input = fmt(traced.input_shape) if traced.input_shape else "unknown"
    out = [
        f"{traced.name}: input {shown_input}",
        line(header),
        line(tuple("-" * w for w in widths)),
    ]
    out += [line(r) for r in rows[:-1]]
    out += [line(tuple("-" * w for w in widths)), line(rows[-1])]
    if traced.ok:
        out.append("ok")
    return "\n".join(out)


def compact_json(document: dict) -> str:
    """Indented JSON with each shape on one line: "output_shape": [16, 5, 5]."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return re.sub(
        r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
        lambda match: "[" + ", ".join(n.strip() for n in match.group(1).split(",")) + "]",
        text,
    )


def human(flops: int) -> str:
    """1303440 -> '1.30M': FLOPs per sample, forward pass."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if flops >= size:
            return f"{flops / size:.2f}{unit}"
    return str(flops)
