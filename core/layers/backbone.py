"""The Backbone block: a torchvision image model cut before its classifier.

`{"type": "Backbone", "arch": "resnet18", "weights": "imagenet"}` turns an image (C, H, W) into
one pooled feature vector (512 for resnet18), so a `Linear` head follows. The block resizes its
input to `image_size` and repeats a grey channel three times inside itself, so any image dataset
fits. The studio's image datasets arrive standardized per channel (mean 0, std 1), which is what
ImageNet's normalization produces, so `normalize` is "none" for them; "imagenet" applies
ImageNet's mean and std to inputs scaled 0-1.

Weights are not part of the module (it is built on the meta device to trace, and exported as
code): a fresh run loads them once it is built (`load_pretrained_backbones`, called by
core.train.transfer). "imagenet" goes through torchvision's own weights API, which reads
`<torch hub dir>/checkpoints/<file>` and downloads it there when the machine is online; "none"
keeps the random initialization (nothing is transferred, and the Build page says so); any other
value is a path to a local `.pth` / `.safetensors` state dict of the torchvision model.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from core.errors import TrainingError
from core.layers.registry import Construct, LayerContext, LayerProblem, ParamSpec, register

ARCHS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
DOWNLOAD_TIMEOUT_S = 20.0  # an offline machine fails fast instead of hanging on the socket


class Backbone(nn.Module):
    """A torchvision image model without its classifier: (C, H, W) -> pooled features."""

    CLASSIFIER = {
        "resnet18": "fc",
        "mobilenet_v3_small": "classifier",
        "efficientnet_b0": "classifier",
    }

    def __init__(
        self,
        arch: str = "resnet18",
        in_channels: int = 3,
        image_size: int = 224,
        normalize: str = "none",
    ):
        super().__init__()
        import torchvision

        self.arch, self.in_channels, self.image_size = arch, in_channels, image_size
        self.normalize = normalize
        self.net = torchvision.models.get_model(arch, weights=None)
        setattr(self.net, self.CLASSIFIER[arch], nn.Identity())  # cut before the classifier
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet's statistics
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x):
        # x: (batch, in_channels, height, width)
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)  # a grey image as three equal channels
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = nn.functional.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
            )
        if self.normalize == "imagenet":
            x = (x - self.mean) / self.std
        return self.net(x)  # (batch, features)


@register(
    "Backbone",
    family="CNN",
    description="A pretrained image model (ResNet, MobileNet, EfficientNet) turning a picture "
    "into features.",
    params=(
        ParamSpec("arch", "choice", "resnet18", choices=ARCHS, help="which torchvision model"),
        ParamSpec(
            "weights",
            "str",
            "imagenet",
            help='"imagenet" (torchvision\'s pretrained weights), "none" (random: nothing is '
            "transferred) or the path of a local .pth state dict",
        ),
        ParamSpec(
            "image_size",
            "int",
            224,
            minimum=32,
            maximum=1024,
            help="images are resized to this square size inside the block (224 = ImageNet's; "
            "smaller is much faster on a CPU)",
        ),
        ParamSpec(
            "normalize",
            "choice",
            "none",
            choices=("none", "imagenet"),
            help='"none" for the studio\'s datasets (already standardized per channel); '
            '"imagenet" for inputs scaled 0-1',
        ),
    ),
    short="backbone",
)
def _backbone(args: dict[str, Any], ctx: LayerContext) -> Construct:
    shape = ctx.shape
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise LayerProblem(
            f"it reads images shaped (channels, height, width) with 1 or 3 channels, and "
            f"receives {list(shape)}; put it first, on an image dataset"
        )
    weights = args.get("weights", "imagenet")
    if weights not in ("imagenet", "none") and not str(weights).strip():
        raise LayerProblem('weights is empty; use "imagenet", "none" or a file path')
    return Construct(
        Backbone,
        {
            "arch": args.get("arch", "resnet18"),
            "in_channels": shape[0],
            "image_size": args.get("image_size", 224),
            "normalize": args.get("normalize", "none"),
        },
    )


# ---- pretrained weights ---------------------------------------------------------------------


def backbone_blocks(model: nn.Module) -> list[tuple[str, Backbone, str]]:
    """(block name, module, weights as the spec says) for each Backbone of a SpecModel."""
    from core.spec import read_document, resolve_graph

    spec = getattr(model, "spec", None)
    if not spec:
        return []
    layers = read_document(spec).layers
    names = resolve_graph(layers).names
    found = []
    for index, layer in enumerate(layers):
        if layer.get("type") == "Backbone":
            module = getattr(model, names[index])
            found.append((names[index], module, str(layer.get("weights", "imagenet"))))
    return found


def load_pretrained_backbones(
    model: nn.Module, skip: set[str] = frozenset()
) -> list[dict[str, str]]:
    """Load each Backbone's weights as its spec says, except the blocks named in `skip` (their
    weights come from elsewhere); what was loaded ([] when none)."""
    loaded = []
    for name, module, weights in backbone_blocks(model):
        if weights == "none" or name in skip:
            continue
        if weights == "imagenet":
            state, source = imagenet_state_dict(module.arch)
        else:
            from core.train.transfer import read_state_dict

            state, source = read_state_dict(Path(weights)), weights
        load_into(module, state, source)
        loaded.append({"block": name, "arch": module.arch, "weights": weights, "file": source})
    return loaded


def weights_file(arch: str) -> tuple[str, Path]:
    """torchvision's URL of `arch`'s ImageNet weights and the file it reads them from."""
    import torchvision

    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return url, folder / os.path.basename(urlparse(url).path)


def imagenet_state_dict(arch: str) -> tuple[dict[str, torch.Tensor], str]:
    """`arch`'s ImageNet weights through torchvision's weights API (the cached file, else a
    download into the torch cache); offline, TrainingError naming the file and its folder."""
    import torchvision

    url, path = weights_file(arch)
    weights = torchvision.models.get_model_weights(arch).DEFAULT
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:  # torch.hub says "Downloading ..." on stdout, which carries only results
        with contextlib.redirect_stdout(sys.stderr):
            state = weights.get_state_dict(progress=False, weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        raise TrainingError(
            f"the ImageNet weights of {arch} are not on this machine and could not be "
            f"downloaded ({type(error).__name__}{': ' + reason if reason else ''}). Put the file "
            f"{path.name} (from {url}) in the folder {path.parent} (TORCH_HOME sets where it "
            'is), or set the Backbone\'s weights to "none" or a local .pth file'
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return state, str(path)


def load_into(module: Backbone, state: dict[str, torch.Tensor], source: str) -> None:
    """A torchvision state dict (classifier included or not; or a Backbone's own, keys under
    `net.`) into `module`; TrainingError naming what does not fit."""
    if state and all(key.startswith("net.") for key in state):
        state = {key[4:]: value for key, value in state.items()}
    head = Backbone.CLASSIFIER[module.arch] + "."
    state = {key: value for key, value in state.items() if not key.startswith(head)}
    expected = module.net.state_dict()
    missing = [key for key in expected if key not in state]
    extra = [key for key in state if key not in expected]
    reshaped = [
        f"{key} {list(state[key].shape)} vs {list(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if missing or extra or reshaped:
        details = "; ".join(
            f"{len(items)} {what} ({', '.join(items[:2])}{', ...' if len(items) > 2 else ''})"
            for items, what in (
                (missing, "weights missing"),
                (extra, "unknown weights"),
                (reshaped, "of another shape, file vs model"),
            )
            if items
        )
        raise TrainingError(f"{source} is not a {module.arch} state dict: {details}")
    module.net.load_state_dict(state)
