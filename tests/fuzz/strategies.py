"""Hypothesis strategies for hostile specs: random JSON, and specs shaped like real ones whose
names, ids, descriptions and arguments are drawn from the values that broke the studio before
(quotes and backslashes, lone surrogates, NaN, 20-digit numbers, nn.Module attribute names)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from core.layers import LAYERS

# text that once escaped a docstring or a literal, or broke a compile
NASTY_TEXT = [
    '"""',
    "'''",
    '"',
    "\\",
    "\\N",
    "\\x",
    "\ud800",
    "\x00",
    "\u2028",
    "\n",
    "\r",
    "#",
    "{",
    "b²",
    "training",
    "input",
    "self",
    "None",
    "__init__",
    "import os",
]
NASTY_NUMBERS = [
    0,
    -1,
    1,
    3,
    10**20,
    -(10**20),
    2**63,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e300,
    -0.0,
    0.5,
    True,
    None,
]

texts = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(NASTY_TEXT) | st.text(max_size=4), max_size=6).map("".join),
)
numbers = st.sampled_from(NASTY_NUMBERS) | st.integers(-5, 40) | st.floats(allow_nan=True)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
shapes = st.one_of(
    st.lists(st.integers(1, 12), min_size=1, max_size=3),
    st.lists(st.sampled_from([1, 8, 10**20, 0, -3, 2**40]), min_size=1, max_size=3),
    json_values,
)


@st.composite
def layers(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    """One layer of a registered type (now and then an unknown one), with arguments that are
    sometimes right and sometimes hostile, and sometimes an id and inputs."""
    layer_type = draw(st.sampled_from(sorted(LAYERS)) | st.sampled_from(["Conv2D", "", "Softmax"]))
    layer: dict[str, Any] = {"type": layer_type}
    known = LAYERS.get(layer_type)
    if known is not None:
        for param in known.params:
            if param.required or draw(st.booleans()):
                right = st.just(param.default) if param.default is not None else st.integers(1, 8)
                if param.kind == "int_list":
                    right = st.lists(st.integers(-2, 8), min_size=1, max_size=3)
                layer[param.name] = draw(right | numbers | texts if draw(st.booleans()) else right)
    if draw(st.integers(0, 3)) == 0:
        layer[draw(texts)] = draw(json_values)  # an argument nobody knows
    if draw(st.booleans()):
        layer_id = draw(texts | st.sampled_from(NASTY_TEXT))
        layer["id"] = layer_id
        ids.append(layer_id)
    if ids and draw(st.integers(0, 4)) == 0:
        layer["inputs"] = draw(st.lists(st.sampled_from([*ids, "input", "nowhere"]), max_size=3))
    return layer


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec document shaped like a real one, hostile where it counts."""
    ids: list[str] = []
    spec: dict[str, Any] = {
        "name": draw(texts),
        "layers": draw(st.lists(layers(ids), min_size=1, max_size=6)),
    }
    if draw(st.integers(0, 3)):
        spec["input_shape"] = draw(shapes)
    if draw(st.booleans()):
        spec["description"] = draw(texts)
    return spec


# small, well-formed models: most of them trace, so their exported code gets checked
ELEMENTWISE = ["ReLU", "Tanh", "GELU", "Sigmoid", "Identity", "SiLU", "Dropout", "LeakyReLU"]


@st.composite
def working_specs(draw: st.DrawFn) -> dict[str, Any]:
    body = [{"type": t} for t in draw(st.lists(st.sampled_from(ELEMENTWISE), max_size=4))]
    for number, layer in enumerate(body):
        if draw(st.booleans()):  # ids must be unique and not blank: a numbered suffix
            layer["id"] = draw(texts | st.sampled_from(NASTY_TEXT)) + f"-{number}"
    spec: dict[str, Any] = {
        "name": "m" + draw(texts),  # a name must not be blank
        "input_shape": [draw(st.integers(1, 16))],
        "layers": [*body, {"type": "Linear", "out_features": draw(st.integers(1, 5))}],
    }
    if draw(st.booleans()):
        spec["description"] = draw(texts)
    return spec
