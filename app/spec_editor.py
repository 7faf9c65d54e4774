"""The spec being edited on the Build page, as plain operations (no Streamlit, testable alone).

A `Draft` is the model-spec document split into blocks, each with a uid that never changes while
the block lives: widget keys are made from it, so moving a block moves its widgets with it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from core.advice import Fix
from core.config import get_settings
from core.errors import SpecError
from core.limits import check_spec_limits, too_large
from core.spec import parse_spec_text

ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNSET = object()
# top-level key of the spec: the dataset the model is built for. It rides in the draft (the
# URL) and in saved versions, so Build reopens on it and Train offers it first; the engine
# ignores it (a spec is trained on whatever dataset a run names).
DATASET_KEY = "dataset"


@dataclass
class Block:
    uid: str
    layer: dict[str, Any]  # exactly the spec's layer: {"type": ..., its arguments, id?, inputs?}

    @property
    def type(self) -> str:
        return str(self.layer.get("type", "?"))

    @property
    def id(self) -> str | None:
        return self.layer.get("id")


@dataclass
class Draft:
    name: str = "my-model"
    blocks: list[Block] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys, kept as given
    revision: int = 0  # grows on every change, so callers can tell a draft changed
    key: str = field(default_factory=lambda: new_uid())  # new for each loaded document

    def index_of(self, uid: str) -> int:
        for index, block in enumerate(self.blocks):
            if block.uid == uid:
                return index
        raise KeyError(uid)

    def block(self, uid: str) -> Block:
        return self.blocks[self.index_of(uid)]

    def ids(self) -> set[str]:
        return {b.id for b in self.blocks if b.id}


def new_uid() -> str:
    return uuid.uuid4().hex[:10]


def from_spec(spec: Any) -> Draft:
    """A draft of a spec document; SpecError when it is not one (not an object, no layer list,
    a layer that is not an object with a "type")."""
    if not isinstance(spec, dict):
        raise SpecError(f'a model spec is a JSON object with a "layers" list, not {_kind(spec)}')
    layers = spec.get("layers")
    if not isinstance(layers, list):
        raise SpecError('a model spec needs a "layers" list, e.g. {"layers": [{"type": "Linear"}]}')
    blocks = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str):
            raise SpecError(
                f'layer {index} must be an object with a "type", such as {{"type": "ReLU"}}, '
                f"not {json.dumps(layer)[:60]}",
                index=index,
            )
        blocks.append(Block(new_uid(), copy.deepcopy(layer)))
    name = spec.get("name")
    extra = {k: copy.deepcopy(v) for k, v in spec.items() if k not in ("name", "layers")}
    return Draft(name=str(name) if name else "my-model", blocks=blocks, extra=extra)


def to_spec(draft: Draft) -> dict[str, Any]:
    """The model-spec document (name first, then input_shape if any, then layers)."""
    spec: dict[str, Any] = {"name": draft.name}
    spec.update(copy.deepcopy(draft.extra))
    spec["layers"] = [copy.deepcopy(b.layer) for b in draft.blocks]
    return spec


def _touch(draft: Draft) -> None:
    draft.revision += 1


def insert(
    draft: Draft, layer: dict[str, Any], *, after: str | None = None, first: bool = False
) -> str:
    """Put a new block after the block `after` (at the end when None, before every block when
    `first`); returns its uid."""
    block = Block(new_uid(), copy.deepcopy(layer))
    end = len(draft.blocks) if after is None else draft.index_of(after) + 1
    position = 0 if first else end
    draft.blocks.insert(position, block)
    _touch(draft)
    return block.uid


def move(draft: Draft, uid: str, delta: int) -> None:
    """Move a block up (delta -1) or down (+1); nothing happens at either end."""
    index = draft.index_of(uid)
    target = index + delta
    if 0 <= target < len(draft.blocks):
        draft.blocks[index], draft.blocks[target] = draft.blocks[target], draft.blocks[index]
        _touch(draft)


def duplicate(draft: Draft, uid: str) -> str:
    """A copy right after the original; the copy gets no id (ids must stay unique)."""
    index = draft.index_of(uid)
    layer = copy.deepcopy(draft.blocks[index].layer)
    layer.pop("id", None)
    block = Block(new_uid(), layer)
    draft.blocks.insert(index + 1, block)
    _touch(draft)
    return block.uid


def delete(draft: Draft, uid: str) -> None:
    """Remove a block and every reference to its id from other blocks' inputs."""
    block = draft.blocks.pop(draft.index_of(uid))
    if block.id:
        for other in draft.blocks:
            _drop_input(other, block.id)
    _touch(draft)


def _drop_input(block: Block, block_id: str) -> None:
    inputs = block.layer.get("inputs")
    if isinstance(inputs, list) and block_id in inputs:
        remaining = [i for i in inputs if i != block_id]
        if remaining:
            block.layer["inputs"] = remaining
        else:
            block.layer.pop("inputs")


def set_arg(draft: Draft, uid: str, name: str, value: Any, *, default: Any = UNSET) -> None:
    """Set one argument; a value equal to the schema default is left out of the document (the
    layer uses it anyway), so exported specs stay short."""
    layer = draft.block(uid).layer
    before = layer.get(name, UNSET)
    if default is not UNSET and value == default:
        layer.pop(name, None)
    else:
        layer[name] = value
    if layer.get(name, UNSET) != before:
        _touch(draft)


def unique_id(draft: Draft, stem: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]", "_", stem.lower()) or "block"
    taken = draft.ids()
    number = 1
    while f"{stem}{number}" in taken:
        number += 1
    return f"{stem}{number}"


def set_id(draft: Draft, uid: str, new_id: str | None) -> None:
    """Rename a block (and the inputs that point at it); SpecError on a bad or taken id."""
    block = draft.block(uid)
    new_id = (new_id or "").strip() or None
    if new_id == block.id:
        return
    if new_id is not None:
        if not ID_PATTERN.match(new_id):
            raise SpecError(
                f"id {new_id!r} is not allowed; use letters, digits and _ (e.g. skip1)",
                index=draft.index_of(uid),
                layer_type=block.type,
            )
        if new_id in draft.ids():
            raise SpecError(
                f"id {new_id!r} is already used by another block; choose another name",
                index=draft.index_of(uid),
                layer_type=block.type,
            )
    old = block.id
    if new_id is None:
        block.layer.pop("id", None)
    else:
        block.layer["id"] = new_id
    for other in draft.blocks:
        inputs = other.layer.get("inputs")
        if old and isinstance(inputs, list) and old in inputs:
            if new_id is None:
                _drop_input(other, old)
            else:
                other.layer["inputs"] = [new_id if i == old else i for i in inputs]
    _touch(draft)


def set_inputs(draft: Draft, uid: str, source_uids: list[str], *, stem_of=None) -> None:
    """Make a block take its input from earlier blocks (by uid); sources without an id get one
    (`stem_of(type) -> "conv"` names it conv1, conv2 ...). An empty list means "the previous
    block"."""
    block = draft.block(uid)
    position = draft.index_of(uid)
    ids = []
    for source_uid in source_uids:
        source = draft.block(source_uid)
        if draft.index_of(source_uid) >= position:
            raise SpecError(
                f"block {position} ({block.type}) can only take input from blocks above it",
                index=position,
                layer_type=block.type,
            )
        if not source.id:
            stem = stem_of(source.type) if stem_of else source.type
            source.layer["id"] = unique_id(draft, stem)
        ids.append(source.id)
    before = block.layer.get("inputs")
    if ids:
        block.layer["inputs"] = ids
    else:
        block.layer.pop("inputs", None)
    if block.layer.get("inputs") != before:
        _touch(draft)


def source_uids(draft: Draft, uid: str) -> list[str]:
    """The uids of the blocks a block's `inputs` name (ids that do not resolve are skipped)."""
    by_id = {b.id: b.uid for b in draft.blocks if b.id}
    inputs = draft.block(uid).layer.get("inputs")
    if not isinstance(inputs, list):
        return []
    return [by_id[i] for i in inputs if i in by_id]


def dataset_of(spec: dict[str, Any] | Draft | None) -> str | None:
    """The dataset a spec (or a draft) was built for; None when it names none."""
    if spec is None:
        return None
    extra = spec.extra if isinstance(spec, Draft) else spec
    name = extra.get(DATASET_KEY)
    return name if isinstance(name, str) and name else None


def set_dataset(draft: Draft, name: str | None) -> None:
    """Record the dataset the draft is built for (None: a typed-in shape, no dataset)."""
    if name == dataset_of(draft):
        return
    if name:
        draft.extra[DATASET_KEY] = name
    else:
        draft.extra.pop(DATASET_KEY, None)
    _touch(draft)


def options_signature(labels: dict[str, str]) -> str:
    """A short digest of option labels: changes whenever one label changes (`state.
    block_inputs_key`)."""
    text = "\n".join(f"{uid}={label}" for uid, label in labels.items())
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def chosen_uids(chosen: list[Any], labels: dict[str, str]) -> list[str]:
    """The uids a "takes input from" box reports: uids as they are; a label the browser kept
    from an earlier run is mapped back to its block, and anything else is dropped."""
    by_label = {label: uid for uid, label in labels.items()}
    uids = []
    for value in chosen:
        uid = value if value in labels else by_label.get(value)
        if uid is not None and uid not in uids:
            uids.append(uid)
    return uids


# ---- the draft in a URL ----------------------------------------------------------------------


def encode(spec: dict[str, Any]) -> str:
    """A spec as a short URL-safe string (compressed JSON)."""
    raw = json.dumps(spec, separators=(",", ":"), sort_keys=False).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


def decode(text: str) -> dict[str, Any]:
    """The inverse of `encode`; SpecError when the text is not one, or when it unpacks to more
    than a spec file may hold (size, nesting, layers: `core.spec.parse_spec_text`), checked
    before anything is built from it."""
    limit = get_settings().max_spec_bytes
    where = "the draft in the address bar"
    if len(text) > limit:
        raise SpecError(f"{where} is {too_large(limit)}")
    try:
        padded = text + "=" * (-len(text) % 4)
        unpacker = zlib.decompressobj()
        raw = unpacker.decompress(base64.urlsafe_b64decode(padded), limit + 1)
    except (ValueError, zlib.error) as error:
        raise SpecError(f"{where} cannot be read ({error})") from None
    if len(raw) > limit or unpacker.unconsumed_tail:
        raise SpecError(f"{where} unpacks to {too_large(limit)}")
    spec = parse_spec_text(raw, source=where)
    if not isinstance(spec, dict):
        raise SpecError("the draft in the address bar is not a model spec")
    return spec


def parse_json(text: str | bytes, *, source: str = "the file") -> dict[str, Any]:
    """A spec document from JSON text; SpecError naming the line and column of a syntax error."""
    try:
        spec = json.loads(text) if len(text) <= get_settings().max_spec_bytes else None
    except UnicodeDecodeError:
        raise SpecError(f"{source} is not a text file; choose a .json model spec") from None
    except json.JSONDecodeError as error:
        raise SpecError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except (RecursionError, ValueError):
        spec = None
    if spec is None:  # too large, too deep or odd: the shared checks say which, precisely
        spec = parse_spec_text(text, source=source)
    check_spec_limits(spec)
    from_spec(spec)  # structure check with a clear message
    return spec


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def apply_fix(draft: Draft, uid: str, fix: Fix) -> None:
    """Apply a suggested fix (`core.advice.Fix`) to block `uid`: its layers go right before
    the block, its arguments are set on it."""
    position = draft.index_of(uid)
    for offset, layer in enumerate(fix.insert_before):
        draft.blocks.insert(position + offset, Block(new_uid(), copy.deepcopy(layer)))
    block = draft.block(uid)
    for name, value in fix.set_args.items():
        block.layer[name] = copy.deepcopy(value)
    _touch(draft)
