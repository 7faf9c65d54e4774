"""Spec errors in words for the browser, with the fix they spell out as data (app.fixes)."""

from __future__ import annotations

from app.fixes import fix_for, in_words
from app.spec_editor import Draft, apply_fix, from_spec, to_spec

FLATTEN = (
    "layer 1 (Linear): it receives an image (16, 6, 6) but works on flat features or "
    'sequences; add {"type": "Flatten"} before it (it would then receive 576 features)'
)
MERGE = (
    'layer 3 (Add): Add sums two or more inputs but receives one; list them in "inputs", '
    'e.g. "inputs": ["shortcut", "conv2"] with matching "id"s on those layers'
)
TWO = (
    "layer 0 (GRU): GRU layers take a sequence shaped (time, features) but this one receives "
    'an image (3, 8, 8); add {"type": "Permute", "dims": [1, 0, 2]} and {"type": "Reshape", '
    '"shape": [8, 24]} before it to read the image row by row'
)


def test_json_in_messages_is_said_in_words():
    assert "add a Flatten block before it" in in_words(FLATTEN)
    assert "{" not in in_words(TWO) and "a Permute block (dims [1, 0, 2])" in in_words(TWO)
    said = in_words(MERGE)
    assert "takes input from" in said and '"inputs"' not in said


def test_the_fix_a_message_spells_out_is_applied_before_the_block():
    fix = fix_for(TWO, first_block=True)
    assert fix.label.startswith("Add a Permute block")
    draft: Draft = from_spec({"layers": [{"type": "GRU", "hidden_size": 4}]})
    apply_fix(draft, draft.blocks[0].uid, fix)
    assert [layer["type"] for layer in to_spec(draft)["layers"]] == ["Permute", "Reshape", "GRU"]
    assert fix_for(MERGE, first_block=False) is None  # no one obvious change: no button
