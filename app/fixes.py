"""Spec errors as the Build page says them: in words, with the obvious fix as a button.

The engine's messages are written for spec files (`add {"type": "Flatten"} before it`, `list
them in "inputs"`), which is right for the CLI. In the browser nobody edits JSON: the same
message names blocks and boxes instead, and a fix the message spells out becomes a
`core.advice.Fix` the page offers as a button. Pure functions, no Streamlit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.advice import Fix

# one layer as the engine writes it into a message: {"type": "Reshape", "shape": [40, 1]}
LAYER_JSON = re.compile(
    r'\{"type": "[A-Za-z0-9_]+"(?:, "[a-z_]+": (?:\[[-0-9, ]*\]|[^,{}\[\]]+))*\}'
)
INPUTS_HINT = re.compile(r'list them in "inputs", e\.g\. "inputs": \[[^\]]*\][^;.]*')
# "add A before it", "add A and B before it", "add A (or a Flatten) before the last Linear":
# the error sits on that layer, so "before it" is before the block that shows the error
_ONE = LAYER_JSON.pattern
ADD_BEFORE = re.compile(
    rf"add (?P<layers>(?:{_ONE})(?: and (?:{_ONE}))?)(?: \(or [^)]*\))? "
    r"before (?:it|the last Linear)"
)
START_WITH = re.compile(rf"start the model with (?P<layers>{_ONE})")


def layer_in_words(layer: dict[str, Any]) -> str:
    """{"type": "Permute", "dims": [1, 0]} -> 'a Permute block (dims [1, 0])'."""
    args = [f"{name} {_value(value)}" for name, value in layer.items() if name != "type"]
    kind = str(layer.get("type"))
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind} block" + (f" ({', '.join(args)})" if args else "")


def in_words(message: str) -> str:
    """An engine message with its JSON said in words (the meaning is unchanged)."""
    message = INPUTS_HINT.sub(
        "choose them in “takes input from” on this block (each gets a name to connect to)",
        message,
    )
    return LAYER_JSON.sub(lambda m: layer_in_words(json.loads(m.group(0))), message)


def fix_for(message: str, *, first_block: bool) -> Fix | None:
    """The fix a message spells out, as data, when it is one obvious change to the block
    that shows the error; None otherwise."""
    match = ADD_BEFORE.search(message)
    if match is None and first_block:
        match = START_WITH.search(message)
    if match is None:
        return None
    layers = tuple(json.loads(m.group(0)) for m in LAYER_JSON.finditer(match.group("layers")))
    if not layers:
        return None
    named = " and ".join(layer_in_words(layer) for layer in layers)
    return Fix(label=f"Add {named} before it", insert_before=layers)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
