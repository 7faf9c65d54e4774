"""Property: whatever a spec holds, checking it gives a Trace (never an exception), and code
exported from any spec that checks parses, holds only what the generator writes, and runs."""

from __future__ import annotations

import ast

from hypothesis import HealthCheck, given, settings

from core.builder import trace
from core.codegen import generate_code
from core.errors import SpecError
from core.limits import check_spec_limits
from core.spec import validate_spec
from tests.fuzz.strategies import json_values, specs, working_specs

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_top_level(tree: ast.Module) -> bool:
    """Only a docstring, torch/math imports, classes and the `__main__` block."""
    allowed = {"import math", "import torch", "from torch import nn"}
    for position, node in enumerate(tree.body):
        if position == 0 and isinstance(node, ast.Expr):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom) and ast.unparse(node) in allowed:
            continue
        if isinstance(node, ast.ClassDef):
            continue
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
            continue
        return False
    return True


def check_code(spec) -> None:
    try:
        code = generate_code(spec)
    except SpecError:
        return
    tree = ast.parse(code)
    assert expected_top_level(tree)
    compile(tree, "<exported>", "exec")
    namespace = {"__name__": "exported"}
    exec(compile(tree, "<exported>", "exec"), namespace)  # defines classes, runs nothing else
    model_class = namespace[tree.body[-2].name]
    model_class()  # instantiable without arguments


@FUZZ
@given(json_values)
def test_any_json_document_is_refused_cleanly(document):
    traced = trace(document)
    assert not traced.ok and isinstance(traced.error, SpecError)
    try:
        check_spec_limits(document)
        validate_spec(document)
    except SpecError:
        pass


@FUZZ
@given(specs())
def test_hostile_specs_trace_or_fail_with_one_spec_error(spec):
    traced = trace(spec)
    assert traced.ok or isinstance(traced.error, SpecError)
    if not traced.ok:
        assert str(traced.error).strip()
        return
    check_code(spec)


@settings(max_examples=25, deadline=None)
@given(working_specs())
def test_exported_code_of_working_specs_parses_and_holds_only_the_model(spec):
    traced = trace(spec)
    assert traced.ok, traced.error
    check_code(spec)
