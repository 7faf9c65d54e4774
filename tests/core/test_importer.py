"""PyTorch code -> spec (torch.fx): every template survives `studio code` -> `studio import`,
functions map onto layers, and code with no studio layer is refused naming its line."""

from __future__ import annotations

import json

import pytest

from core import builder, codegen, importer, templates
from core.cli.main import main
from core.facts import ModelFacts
from core.layers import LAYERS

TEMPLATES = {t.name: t.spec for t in templates.list_templates()}


def canonical(layers: list[dict]) -> list[dict]:
    """Layers with arguments equal to their schema default left out (both mean the same)."""
    out = []
    for layer in layers:
        params = {p.name: p for p in LAYERS[layer["type"]].params}
        out.append(
            {
                k: v
                for k, v in layer.items()
                if k not in params or params[k].required or v != params[k].default
            }
        )
    return out


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_round_trips_through_its_code(name, tmp_path, capsys):
    spec = TEMPLATES[name]
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    code_file = tmp_path / "model.py"
    shape = ",".join(str(d) for d in spec["input_shape"])
    assert main(["code", str(spec_file), "--input-shape", shape, "-o", str(code_file)]) == 0
    out = tmp_path / "imported.json"
    assert main(["import", str(code_file), "-o", str(out)]) == 0
    imported = json.loads(out.read_text())

    assert imported["name"] == spec["name"]
    assert canonical(imported["layers"]) == canonical(spec["layers"])
    facts = ModelFacts.from_input_shape(spec["input_shape"], num_classes=10)
    before, after = builder.check_model(spec, facts), builder.check_model(imported, facts)
    assert [r.output_shape for r in after.layers] == [r.output_shape for r in before.layers]
    assert after.params == before.params
    capsys.readouterr()


HAND_WRITTEN = """
import torch
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return F.relu(x + self.bn(self.conv(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.block = Block(8)
        self.side = nn.Conv2d(1, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4 * 2, 10)

    def forward(self, x):
        a = self.block(torch.relu(self.stem(x)))
        y = torch.cat([a, self.side(x)], dim=1)
        y = F.max_pool2d(y, 2)
        return self.fc(y.view(y.size(0), -1))
"""


def test_functions_residual_adds_and_concatenations_map_onto_layers():
    imported = importer.import_source(HAND_WRITTEN, filename="net.py", input_shape=(1, 8, 8))
    layers = imported.spec["layers"]
    assert [layer["type"] for layer in layers] == [
        "Conv2d", "ReLU", "Conv2d", "BatchNorm2d", "Add", "ReLU", "Conv2d", "Concat",
        "MaxPool2d", "Flatten", "Linear",
    ]  # fmt: skip
    add, side, concat = layers[4], layers[6], layers[7]
    assert add["inputs"] == [layers[1]["id"], layers[3]["id"]]  # the shortcut, then the block
    assert side["inputs"] == ["input"] and concat["inputs"] == [layers[5]["id"], side["id"]]
    assert imported.checked and imported.class_name == "Net"
    traced = builder.check_model(imported.spec, ModelFacts.from_input_shape((1, 8, 8)))
    # stem, block conv, batch norm, side conv (1x1), fc
    assert traced.params == imported.params == (8 * 9 + 8) + (8 * 8 * 9 + 8) + 16 + 16 + 2570


def test_an_unsupported_operation_is_named_with_its_line():
    source = (
        "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n\n"
        "    def forward(self, x):\n        x = self.fc(x)\n"
        "        return torch.softmax(x, dim=1)\n"
    )
    with pytest.raises(importer.ImportProblem) as caught:
        importer.import_source(source, filename="net.py")
    message = str(caught.value)
    assert "torch.softmax" in message and "line 12" in message


def test_a_class_that_needs_arguments_or_a_missing_class_is_refused():
    source = "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, n):\n        super().__init__()\n"
    with pytest.raises(importer.ImportProblem, match="without arguments"):
        importer.import_source(source)
    with pytest.raises(importer.ImportProblem, match="no nn.Module class 'Other'"):
        importer.import_source(source, class_name="Other")


def test_studio_import_cli_reports_a_user_error_on_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("this is not python(")
    assert main(["import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not valid Python" in err and err.count("\n") == 1


def test_generated_code_carries_its_input_shape():
    code = codegen.generate_code(TEMPLATES["digits-cnn"], ModelFacts.from_input_shape((1, 8, 8)))
    assert importer.shape_hint(code) == (1, 8, 8)
