"""The Backbone block: torchvision weights through torchvision's own loading path (a file in
its real format under a temporary TORCH_HOME: nothing is downloaded), code export, Grad-CAM's
layer, the advice for random weights."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from core.advice import advise
from core.builder import build_model, trace
from core.codegen import generate_code
from core.errors import TrainingError
from core.explain.layers import find_last_conv
from core.facts import ModelFacts
from core.layers.backbone import load_into, load_pretrained_backbones, weights_file
from core.train.transfer import initial_state

FACTS = ModelFacts(input_shape=(1, 8, 8), num_classes=3)
ARCH = "mobilenet_v3_small"  # the smallest of the three: a 10 MB weights file


def spec(weights: str) -> dict:
    return {
        "name": "pretrained",
        "layers": [
            {"type": "Backbone", "arch": ARCH, "weights": weights, "image_size": 32},
            {"type": "Linear"},
        ],
    }


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_download(url, *args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path / "torch"


def test_imagenet_weights_load_from_torchvisions_file_in_its_own_format(torch_home):
    torch.manual_seed(7)
    reference = torchvision.models.get_model(ARCH, weights=None)  # classifier included
    _, path = weights_file(ARCH)
    assert path.parent == torch_home / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = build_model(spec("imagenet"), FACTS)
    report = initial_state(None, model)
    assert report.pretrained == [
        {"block": "backbone1", "arch": ARCH, "weights": "imagenet", "file": str(path)}
    ]
    for name, tensor in model.backbone1.net.state_dict().items():
        assert torch.equal(tensor, reference.state_dict()[name]), name
    # a local .pth state dict goes the same way; a file of another model is refused by name
    local = build_model(spec(str(path)), FACTS)
    initial_state(None, local)
    assert torch.equal(local.backbone1.net.features[0][0].weight, reference.features[0][0].weight)
    other = torch_home / "other.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(TrainingError, match=f"other.pth is not a {ARCH} state dict"):
        load_into(local.backbone1, torch.load(other, weights_only=True), str(other))


def test_offline_without_the_file_the_message_names_the_file_and_its_folder(torch_home):
    model = build_model(spec("imagenet"), FACTS)
    url, path = weights_file(ARCH)
    with pytest.raises(TrainingError) as caught:
        initial_state(None, model)
    message = str(caught.value)
    assert f"Put the file {path.name} (from {url}) in the folder {path.parent}" in message
    assert 'weights to "none"' in message
    # a parent run that provides the backbone's weights needs no file (init-from skips it)
    assert load_pretrained_backbones(model, skip={"backbone1"}) == []


def test_trace_code_export_gradcam_layer_and_the_random_weights_advice():
    traced = trace(spec("none"), FACTS, finished=True)
    assert traced.ok, traced.error
    assert [layer.output_shape for layer in traced.layers] == [(576,), (3,)]
    torch.manual_seed(0)
    model = build_model(spec("none"), FACTS).eval()
    assert traced.params == sum(p.numel() for p in model.parameters())
    assert traced.flops > 0
    assert find_last_conv(model) is model.backbone1.net.features[-1][0]  # Grad-CAM's layer
    [advice] = advise(traced)
    assert "nothing is transferred" in advice.message
    assert advice.fix.set_args == {"weights": "imagenet"}
    namespace: dict = {}
    exec(compile(generate_code(traced), "exported.py", "exec"), namespace)
    exported = namespace["Pretrained"]().eval()
    exported.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(exported(x), model(x), atol=1e-6)
