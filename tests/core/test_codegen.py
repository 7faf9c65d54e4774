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
from core.codegen import class_name_for, generate_code
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
    model = build_model(spec, **options).eval()
    code = generate_code(spec, **options)
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
    assert "nn.Embedding(num_embeddings=30, embedding_dim=12, padding_idx=0)" in code
    assert "torch.randint(0, 30, (2, 16))" in code
    assert "x, _ = self.lstm1(x)  # (batch, 16, 16)" in code


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
    (tmp_path / "text.py").write_text(generate_code(TEXT_SPEC, vocab_size=30, num_classes=3))
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
