"""Exported code: standalone, readable, and the same model as build_model's."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.builder import build_model
from core.codegen import class_name_for, generate_code, verified
from core.errors import SpecError
from core.facts import ModelFacts
from core.templates import list_templates

TEMPLATES = {t.name: t for t in list_templates()}
TEXT_SPEC = {
    "name": "review-classifier",
    "input_shape": [16],
    "layers": [
        {"type": "Embedding", "embedding_dim": 12, "padding_idx": 0},
        {"type": "PositionalEncoding"},
        {"type": "LSTM", "hidden_size": 8, "bidirectional": True},
        {"type": "SequencePool", "mode": "max"},
        {"type": "Linear"},
    ],
}


def exported_class(code: str) -> type[torch.nn.Module]:
    namespace = {"__name__": "exported"}
    exec(compile(code, "<exported>", "exec"), namespace)
    name = re.findall(r"^class (\w+)\(nn\.Module\):", code, re.M)[-1]  # the model comes last
    return namespace[name]


def same_model(spec, x, **options):
    torch.manual_seed(0)
    model = build_model(spec, ModelFacts(**options)).eval()
    code = generate_code(spec, ModelFacts(**options))
    exported = exported_class(code)().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(exported(x), model(x), atol=1e-6)
    return code


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_round_trips_through_exported_code(name):
    spec = TEMPLATES[name].spec
    code = same_model(spec, torch.randn(3, *spec["input_shape"]))
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"torch", "math"}, imported
    assert "core" not in code.split("class ")[0]


def test_text_model_round_trips_and_uses_token_ids():
    x = torch.randint(0, 30, (4, 16))
    code = same_model(TEXT_SPEC, x, vocab_size=30, num_classes=3)
    # the vocabulary comes from the data: the class takes it, defaulting to the data's
    assert "def __init__(self, vocab_size: int = 30):" in code
    assert "nn.Embedding(num_embeddings=vocab_size, embedding_dim=12, padding_idx=0)" in code
    assert "torch.randint(0, 30, (2, 16))" in code
    assert "x, _ = self.lstm1(x)  # (batch, 16, 16)" in code
    bigger = exported_class(code)(vocab_size=50)
    assert bigger.embed1.num_embeddings == 50


def test_text_model_with_its_own_vocabulary_takes_no_argument():
    spec = {**TEXT_SPEC, "layers": [dict(TEXT_SPEC["layers"][0], num_embeddings=40)]}
    spec["layers"] += TEXT_SPEC["layers"][1:]
    code = same_model(spec, torch.randint(0, 40, (2, 16)), num_classes=3)
    assert "def __init__(self):" in code
    assert "nn.Embedding(num_embeddings=40, embedding_dim=12, padding_idx=0)" in code


def test_code_reads_like_hand_written_pytorch():
    code = generate_code(TEMPLATES["cifar10-tutorial-cnn"].spec)
    assert "class Cifar10TutorialCnn(nn.Module):" in code
    assert "self.conv1 = nn.Conv2d(in_channels=3, out_channels=6, kernel_size=5)" in code
    assert "        # x: (batch, 3, 32, 32)\n" in code
    assert "x = self.pool2(x)  # (batch, 16, 5, 5)" in code
    assert "x = self.flatten1(x)  # (batch, 400)" in code
    assert "class Permute" not in code and "import math" not in code
    gru = generate_code(TEMPLATES["mnist1d-gru"].spec)
    assert "class Permute(nn.Module):" in gru and "class SequencePool(nn.Module):" in gru
    assert "class Reshape" not in gru and "class SelfAttention" not in gru


def test_graph_code_names_the_values_read_again():
    code = generate_code(TEMPLATES["residual-cnn"].spec)
    assert "stem = self.stem(x)  # (batch, 32, 8, 8)" in code
    assert "x = self.add1(stem, x)  # (batch, 32, 8, 8)" in code
    assert "pooled = self.pooled(x)" in code
    assert "block2 = self.block2(x)" in code
    assert "x = self.shortcut(pooled)" in code
    assert "x = self.add2(x, block2)" in code


def test_model_reading_its_input_twice_keeps_it_in_a_named_variable():
    spec = {
        "name": "two-views",
        "input_shape": [5],
        "layers": [
            {"type": "Tanh", "id": "a"},
            {"type": "Sigmoid", "inputs": ["input"], "id": "b"},
            {"type": "Concat", "inputs": ["a", "b"]},
            {"type": "Linear", "out_features": 2},
        ],
    }
    code = same_model(spec, torch.randn(3, 5))
    assert "def forward(self, inputs):" in code and "a = self.a(inputs)" in code
    assert "x = self.b(inputs)" in code


def test_exported_file_runs_its_own_smoke_check(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(generate_code(TEMPLATES["mnist1d-attention"].spec))
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Mnist1dAttention: 10,218 parameters, output (2, 10)" in done.stdout


def test_class_names_come_from_the_spec_name():
    assert class_name_for("seed-lenet", set()) == "SeedLenet"
    assert class_name_for("3 layer mlp", set()) == "Model3LayerMlp"
    assert class_name_for("add", {"Add"}) == "AddModel"
    assert class_name_for("!!!", set()) == "Model"


def test_exported_code_is_lint_and_format_clean(tmp_path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    for name, template in TEMPLATES.items():
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(generate_code(template.spec))
    (tmp_path / "text.py").write_text(
        generate_code(TEXT_SPEC, ModelFacts(vocab_size=30, num_classes=3))
    )
    rules = ["--isolated", "--line-length", "100"]
    lint = subprocess.run(
        [ruff, "check", *rules, "--select", "E,F,W,I,B,UP,SIM", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    style = subprocess.run(
        [ruff, "format", *rules, "--check", str(tmp_path)], capture_output=True, text=True
    )
    assert style.returncode == 0, style.stdout


# ---- hostile strings: nothing a spec says can become code in the exported file --------------

INJECTION = 'x"""\nopen("planted.txt", "w").write("ran")\n"""'
HOSTILE_TEXTS = [
    INJECTION,
    "x\\N",  # \N{...} is a named escape: a bare \N does not compile
    'ends with a quote"',
    "ends with a backslash\\",
    "'''single quotes''' and \"\"\"",
    "NUL \x00, line\u2028separator, tab\t, bell \a",
    "\\x41\\u0041 are not escapes here",
]


def small_spec(**changes):
    spec = {
        "name": "probe",
        "input_shape": [4],
        "layers": [{"type": "Linear", "out_features": 3, "id": "head"}],
    }
    spec.update(changes)
    return spec


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_name_and_description_stay_text(text):
    code = generate_code(small_spec(name=text, description=text))
    tree = ast.parse(code)
    assert f'the model "{text}"' in ast.get_docstring(tree, clean=False)
    model_class = tree.body[-2]
    assert isinstance(model_class, ast.ClassDef)
    description = ast.get_docstring(model_class, clean=False)
    assert re.sub(r"\s", "", description) == re.sub(r"\s", "", text)  # wrapped, else the same
    same_model(small_spec(name=text, description=text), torch.randn(2, 4))


def test_a_lone_surrogate_is_kept_as_visible_text():
    code = generate_code(small_spec(name="odd \ud800", description="odd \udfff"))
    exported = exported_class(code)
    assert exported.__doc__ == "odd \\udfff" and 'the model "odd \\\\ud800"' in code


def test_planted_code_does_not_run_when_the_file_runs(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(generate_code(small_spec(name=INJECTION)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "planted.txt").exists()
    assert "parameters, output (2, 3)" in done.stdout


@pytest.mark.parametrize(
    ("layer_id", "attribute"),
    [("b²", "b"), ("x\\N", "x_N"), ("training", "training_layer"), ("卷积", "layer")],
)
def test_ids_become_safe_attribute_names(layer_id, attribute):
    spec = small_spec(
        layers=[{"type": "Tanh", "id": layer_id}, {"type": "Linear", "out_features": 2}]
    )
    code = same_model(spec, torch.randn(2, 4))
    assert f"self.{attribute} = nn.Tanh()" in code
    assert build_model(spec).get_submodule(attribute) is not None


def test_spec_names_that_are_keywords_give_a_usable_class():
    assert class_name_for("none", set()) == "NoneModel"
    assert class_name_for("true", set()) == "TrueModel"
    assert len(class_name_for("a" * 10_000, set())) <= 60
    same_model(small_spec(name="none"), torch.randn(2, 4))


def test_code_with_statements_the_generator_never_writes_is_refused():
    code = generate_code(small_spec())
    class_name = class_name_for("probe", set())
    assert verified(code, class_name, []) == code
    tampered = [
        code.replace("import torch\n", "import torch\nimport os\n"),  # an extra import
        code.replace("from torch import nn\n", "from torch import nn\nprint('hi')\n"),
        code.replace("    def __init__", "    import os\n\n    def __init__"),  # class body
        code.replace("super().__init__()", "super().__init__()\n        print('hi')"),
        code.replace("        return x", "        exec('1')\n        return x"),
        code + "\nprint('after the smoke check')\n",
        code.replace('"""\n\nimport torch', '"""\n\nimport torch\n"""', 1),  # does not parse
    ]
    for bad in tampered:
        assert bad != code
        with pytest.raises(SpecError, match="failed its safety check"):
            verified(bad, class_name, [])
