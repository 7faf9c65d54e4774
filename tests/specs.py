"""Small model specs shared by the tests and benchmarks that train (tiny: runs take seconds)."""

from __future__ import annotations

DIGITS_CNN = {
    "name": "digits-cnn",
    "layers": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 64},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}
# half as wide: the worker tests train it many times
NARROW_DIGITS_CNN = {
    "name": "digits-cnn",
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 32},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}
TINY_MLP = {"name": "tiny", "layers": [{"type": "Flatten"}, {"type": "Linear"}]}
