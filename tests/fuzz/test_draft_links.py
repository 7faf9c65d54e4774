"""Property: a `?draft=` link decodes to a spec or to one SpecError, within the spec limits,
however it was made; and links that once ate the server are refused at once."""

from __future__ import annotations

import base64
import contextlib
import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import spec_editor
from core.errors import SpecError
from tests.fuzz.strategies import json_values, specs

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def packed(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200).map(packed))
def test_any_link_text_decodes_or_is_one_spec_error(text):
    try:
        spec = spec_editor.decode(text)
    except SpecError as error:
        assert str(error).startswith("the draft in the address bar")
    else:
        assert isinstance(spec, dict)


@FUZZ
@given(specs() | json_values)
def test_links_made_from_any_document_decode_to_it_or_refuse_it(document):
    text = packed(json.dumps(document, allow_nan=True).encode("utf-8", "surrogatepass"))
    try:
        spec = spec_editor.decode(text)
    except SpecError:
        return
    with contextlib.suppress(SpecError):
        spec_editor.from_spec(spec)


def test_a_million_layer_link_is_refused_before_it_is_unpacked():
    bomb = spec_editor.encode({"layers": [{"type": "ReLU"}] * 1_000_000})  # a ~40 KB link
    with pytest.raises(SpecError, match=r"unpacks to larger than 1,048,576 bytes"):
        spec_editor.decode(bomb)


def test_many_layers_and_deep_nesting_in_a_link_are_refused(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_SPEC_LAYERS", "100")
    many = packed(json.dumps({"layers": [{"type": "ReLU"}] * 101}).encode())
    with pytest.raises(SpecError, match=r"the spec has 101 layers; at most 100"):
        spec_editor.decode(many)
    deep = packed(b'{"layers": ' + b"[" * 5000 + b"]" * 5000 + b"}")  # a 383-character link
    with pytest.raises(SpecError, match=r"nested 5,001 levels deep; a spec may nest at most 32"):
        spec_editor.decode(deep)


def test_an_uploaded_spec_file_gets_the_same_limits():
    deep = '{"layers": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(SpecError, match=r"model.json: lists and objects nested 5,001 levels"):
        spec_editor.parse_json(deep, source="model.json")
