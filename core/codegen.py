"""Spec -> one readable, standalone PyTorch source file.

The file imports only torch (and math when needed). Studio-only layers are copied in from
`core.studio_layers` as small classes, so the exported class and `build_model`'s model are the
same modules under the same attribute names: their state_dicts are interchangeable.
"""

from __future__ import annotations

import ast
import inspect
import json
import keyword
import re
import textwrap
from typing import Any

import torch

from core import studio_layers
from core.builder import Step, Trace, check_model
from core.errors import SpecError
from core.facts import ModelFacts
from core.layers.backbone import Backbone
from core.spec import INPUT

INDENT = "    "
MAX_LINE = 100
MAX_CLASS_NAME = 60  # a longer spec name is cut: the class name is for reading, not storing


def generate_code(spec: dict[str, Any] | Trace, facts: ModelFacts | None = None) -> str:
    """Python source of an `nn.Module` class for `spec` (named from the spec's name, e.g.
    "seed-lenet" -> SeedLenet), instantiable without arguments; raises SpecError. An ok
    `Trace` is written out as it is, without tracing again. An Embedding whose vocabulary
    comes from the data takes it as the class's `vocab_size` argument."""
    traced = spec if isinstance(spec, Trace) else check_model(spec, facts)
    if not traced.ok:
        raise traced.error or SpecError("the spec cannot be built")
    normalized = traced.spec
    studio = studio_classes_used(traced.steps)
    class_name = class_name_for(traced.name, {cls.__name__ for cls in studio})
    description = normalized.get("description")
    parts = [
        header(traced, class_name) + "\n\n" + imports(studio),
        *[inspect.getsource(cls).rstrip() for cls in studio],
        model_class(traced, class_name, description),
        smoke_check(traced, class_name),
    ]
    return verified("\n\n\n".join(part.rstrip() for part in parts) + "\n", class_name, studio)


def studio_classes_used(steps: list[Step]) -> list[type]:
    used = {step.construct.cls for step in steps}
    # a Backbone is written out too: it builds its torchvision model (the weights come from
    # the run's checkpoint, loaded into the exported class like any other layer's)
    return [cls for cls in (*studio_layers.STUDIO_CLASSES, Backbone) if cls in used]


def class_name_for(name: str, taken: set[str]) -> str:
    """'seed-lenet' -> 'SeedLenet'; digits first get a 'Model' prefix. Only ASCII letters and
    digits survive, so the result is always a plain identifier (never a keyword such as None)."""
    words = re.findall(r"[A-Za-z0-9]+", name)
    camel = "".join(w[:1].upper() + w[1:] for w in words)[:MAX_CLASS_NAME] or "Model"
    if camel[0].isdigit():
        camel = f"Model{camel}"
    if camel in taken or camel in {"torch", "nn", "math"} or keyword.iskeyword(camel):
        camel = f"{camel}Model"
    return camel


def header(traced: Trace, class_name: str) -> str:
    kind = "token ids" if traced.input_dtype != torch.float32 else "float"
    return (
        f'"""{class_name}: the model "{docstring_text(traced.name)}", exported from Model '
        "Studio.\n\n"
        f"Standalone PyTorch, no studio import. Input: (batch, {_dims(traced.input_shape)}) "
        f"{kind};\noutput: (batch, {_dims(traced.output_shape)}). "
        f"{traced.params:,} parameters.\n"
        '"""'
    )


def imports(studio: list[type]) -> str:
    needs_math = any("math." in inspect.getsource(cls) for cls in studio)
    lines = ["import math", ""] if needs_math else []
    return "\n".join([*lines, "import torch", "from torch import nn"])


def model_class(traced: Trace, class_name: str, description: str | None) -> str:
    doc = description or f'Built from the spec "{traced.name}".'
    lines = [f"class {class_name}(nn.Module):", *docstring(doc), ""]
    from_data = vocabulary_from_data(traced)
    lines += init_signature(traced, bool(from_data)) + [f"{INDENT * 2}super().__init__()"]
    for step in traced.steps:
        named = {"num_embeddings": VOCAB_ARGUMENT} if step.name in from_data else {}
        lines += constructor_lines(step, named)
    lines += ["", f"{INDENT}def forward(self, {input_variable(traced)}):"]
    lines += forward_lines(traced)
    return "\n".join(lines)


def docstring(text: str) -> list[str]:
    """The class docstring: `text` wrapped, each line escaped (see `docstring_text`)."""
    wrapped = textwrap.wrap(text, MAX_LINE - len(INDENT) - 3) or [""]
    lines = [docstring_text(line) for line in wrapped]
    if len(lines) == 1 and len(INDENT) + len(lines[0]) + 6 <= MAX_LINE:
        return [f'{INDENT}"""{lines[0]}"""']
    return [
        f'{INDENT}"""{lines[0]}',
        *(f"{INDENT}{line}" for line in lines[1:]),
        f'{INDENT}"""',
    ]


def docstring_text(text: str) -> str:
    """`text` made safe inside a triple-quoted string: backslashes and quotes escaped (a quote
    can neither close the string nor sit against its closing quotes), and line breaks, control
    and unprintable characters written as escapes. Reading the file gives back exactly `text`
    (a lone surrogate, which no file can hold, reads as its escape); nothing can become code."""
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate (JSON allows it) would stop the
            out.append(f"\\\\u{ord(char):04x}")  # class being created: it stays visible text
        else:  # \n, \t, \x00, \u2028 ...
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


VOCAB_ARGUMENT = "vocab_size"  # the generated class's argument for a vocabulary from the data


def vocabulary_from_data(traced: Trace) -> set[str]:
    """Names of the Embedding steps whose num_embeddings the spec leaves to the data."""
    layers = (traced.spec or {}).get("layers", [])
    return {
        step.name
        for step in traced.steps
        if step.type == "Embedding" and layers[step.index].get("num_embeddings") is None
    }


def init_signature(traced: Trace, takes_vocabulary: bool) -> list[str]:
    """`def __init__(self):`, or with `vocab_size` defaulting to the known (or assumed) size."""
    if not takes_vocabulary:
        return [f"{INDENT}def __init__(self):"]
    facts = traced.facts
    if facts.vocab_assumed:
        note = [
            f"{INDENT}# vocab_size: how many token ids the Embedding knows. No vocabulary was "
            "known",
            f"{INDENT}# when this was written, so {facts.vocab_size} is a placeholder: pass "
            "your vocabulary's size as vocab_size.",
        ]
    else:
        note = [f"{INDENT}# vocab_size: how many token ids the Embedding knows (the data's)."]
    return [*note, f"{INDENT}def __init__(self, {VOCAB_ARGUMENT}: int = {facts.vocab_size}):"]


def constructor_lines(step: Step, named: dict[str, str] | None = None) -> list[str]:
    """`self.name = Class(k=v, ...)`; `named` arguments take a variable instead of a literal."""
    cls = step.construct.cls
    callee = f"nn.{cls.__name__}" if cls.__module__.startswith("torch") else cls.__name__
    named = named or {}
    args = [f"{k}={named.get(k) or literal(v)}" for k, v in step.construct.kwargs.items()]
    line = f"{INDENT * 2}self.{step.name} = {callee}({', '.join(args)})"
    if len(line) <= MAX_LINE:
        return [line]
    joined = f"{INDENT * 3}{', '.join(args)}"
    if len(joined) <= MAX_LINE:
        return [f"{INDENT * 2}self.{step.name} = {callee}(", joined, f"{INDENT * 2})"]
    return (
        [f"{INDENT * 2}self.{step.name} = {callee}("]
        + [f"{INDENT * 3}{arg}," for arg in args]
        + [f"{INDENT * 2})"]
    )


def literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        items = ", ".join(literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def variables(traced: Trace) -> dict[str, str]:
    """Variable holding each value in forward: `x` along a chain, the layer name where a value
    is read again later (a shortcut) or read by a layer that does not follow it."""
    steps = traced.steps
    readers: dict[str, list[int]] = {INPUT: []}
    for position, step in enumerate(steps):
        readers.setdefault(step.name, [])
        for source in step.sources:
            readers[source].append(position)
    names = {INPUT: "x" if readers[INPUT] == [0] else "inputs"}
    last = len(steps) - 1
    for position, step in enumerate(steps):
        if step.name == traced.output:
            chain = position == last
        else:
            chain = readers[step.name] == [position + 1]
        names[step.name] = "x" if chain else step.name
    return names


def input_variable(traced: Trace) -> str:
    return variables(traced)[INPUT]


def forward_lines(traced: Trace) -> list[str]:
    names = variables(traced)
    body = [f"{INDENT * 2}# {names[INPUT]}: (batch, {_dims(traced.input_shape)})"]
    for step in traced.steps:
        target = names[step.name]
        if step.construct.tuple_output:
            target += ", _"  # recurrent layers also return their final state; keep the sequence
        call = f"self.{step.name}({', '.join(names[s] for s in step.sources)})"
        body.append(f"{INDENT * 2}{target} = {call}  # (batch, {_dims(step.output_shape)})")
    body.append(f"{INDENT * 2}return {names[traced.output]}")
    return body


def smoke_check(traced: Trace, class_name: str) -> str:
    shape = ", ".join(str(s) for s in (2, *traced.input_shape))
    if traced.input_dtype != torch.float32:
        vocab = next(
            s.construct.kwargs["num_embeddings"] for s in traced.steps if s.type == "Embedding"
        )
        make_input = f"torch.randint(0, {vocab}, ({shape}))"
    else:
        make_input = f"torch.randn({shape})"
    expected = ", ".join(str(s) for s in (2, *traced.output_shape))
    return "\n".join(
        [
            'if __name__ == "__main__":',
            f"{INDENT}model = {class_name}().eval()",
            f"{INDENT}x = {make_input}",
            f"{INDENT}with torch.no_grad():",
            f"{INDENT * 2}y = model(x)",
            f"{INDENT}assert tuple(y.shape) == ({expected}{',' if len(traced.output_shape) == 0 else ''}), y.shape",
            f"{INDENT}params = sum(p.numel() for p in model.parameters())",
            f'{INDENT}print(f"{class_name}: {{params:,}} parameters, output {{tuple(y.shape)}}")',
        ]
    )


def _dims(shape: tuple[int, ...] | None) -> str:
    return ", ".join(str(s) for s in shape or ())


# ---- the generated file checked before it is offered ----------------------------------------

IMPORTS = {"import math", "import torch", "from torch import nn"}
INIT_FIRST = "super().__init__()"


def verified(code: str, class_name: str, studio: list[type]) -> str:
    """`code` if it parses and holds only what the generator writes: a docstring, the torch
    (and math) imports, the studio classes, the model class (docstring, `__init__` assigning
    layers, `forward` assigning values) and the `__main__` smoke check. A spec string that
    slipped out of its docstring or literal would show up here as a statement of its own;
    SpecError then, so such a file is never written or offered for download."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise _unsafe(f"it does not parse (line {error.lineno}: {error.msg})") from None
    body = list(tree.body)
    if not body or not _is_docstring(body[0]):
        raise _unsafe("it does not start with its docstring")
    expected_classes = [cls.__name__ for cls in studio] + [class_name]
    rest = body[1:]
    imports = [node for node in rest if isinstance(node, ast.Import | ast.ImportFrom)]
    classes = [node for node in rest if isinstance(node, ast.ClassDef)]
    mains = [node for node in rest if isinstance(node, ast.If)]
    if len(imports) + len(classes) + len(mains) != len(rest) or len(mains) != 1:
        raise _unsafe("it holds top-level statements the generator never writes")
    if {ast.unparse(node) for node in imports} - IMPORTS:
        raise _unsafe("it imports more than torch and math")
    if [node.name for node in classes] != expected_classes:
        raise _unsafe(f"its classes are {[node.name for node in classes]}")
    if ast.unparse(mains[0].test) != "__name__ == '__main__'":
        raise _unsafe("its last block is not the `__main__` smoke check")
    _check_model_class(classes[-1])
    return code


def _check_model_class(model: ast.ClassDef) -> None:
    body = model.body
    if len(body) != 3 or not _is_docstring(body[0]):
        raise _unsafe("the model class holds more than its docstring, __init__ and forward")
    init, forward = body[1], body[2]
    if not (isinstance(init, ast.FunctionDef) and init.name == "__init__"):
        raise _unsafe("the model class has no __init__ where expected")
    if not (isinstance(forward, ast.FunctionDef) and forward.name == "forward"):
        raise _unsafe("the model class has no forward where expected")
    if ast.unparse(init.body[0]) != INIT_FIRST or not all(
        _assigns_self_attribute(node) for node in init.body[1:]
    ):
        raise _unsafe("__init__ does more than create the layers")
    *steps, last = forward.body
    if not isinstance(last, ast.Return) or not all(isinstance(n, ast.Assign) for n in steps):
        raise _unsafe("forward does more than run the layers")


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _assigns_self_attribute(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Attribute)
        and isinstance(node.targets[0].value, ast.Name)
        and node.targets[0].value.id == "self"
        and isinstance(node.value, ast.Call)
    )


def _unsafe(reason: str) -> SpecError:
    return SpecError(
        f"the exported code failed its safety check ({reason}); nothing was written. This is a "
        "studio bug: please report it with the spec"
    )
