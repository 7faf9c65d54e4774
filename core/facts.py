"""What a model must know about the data it reads: one typed object, `ModelFacts`.

A dataset (`Dataset.facts`, `DatasetInfo.facts`), a shape typed by hand
(`ModelFacts.from_input_shape`) or a saved run (through its dataset) produce it; the tracer,
the builder, the code generator and the explain engine take it. "Text means int64 token ids"
is decided here and nowhere else (`input_dtype_name`).

This module imports no torch at load time, so `studio` commands that never build a model stay
quick to start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DtypeName = Literal["float32", "int64"]
TOKEN_MODALITY = "text"  # the one modality whose samples are token ids, not measurements
# a vocabulary assumed where none is known yet (the Build page with a typed-in shape): the
# generated code takes the real size as a constructor argument, this is only its default
PLACEHOLDER_VOCAB = 10_000


def input_dtype_name(modality: str | None) -> DtypeName:
    """The dtype a model's input has for data of this modality: token ids or measurements."""
    return "int64" if modality == TOKEN_MODALITY else "float32"


def input_dtype_for(modality: str | None) -> torch.dtype:
    """`input_dtype_name` as a torch dtype (torch loads on first call)."""
    import torch

    return getattr(torch, input_dtype_name(modality))


@dataclass(frozen=True)
class ModelFacts:
    """The facts a model is built for (batch excluded); None means "not known here".

    input_shape: the sample shape; None leaves it to the spec's own `input_shape`.
    num_classes: outputs of a last Linear without out_features (1 for regression).
    vocab_size: distinct token ids, for an Embedding without num_embeddings.
    modality: "image" | "signal" | "tabular" | "text"; None when only a shape was typed (the
        tracer then reads text from an Embedding that takes the input).
    vocab_assumed: vocab_size is PLACEHOLDER_VOCAB standing in for an unknown vocabulary.
    """

    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    vocab_size: int | None = None
    modality: str | None = None
    vocab_assumed: bool = False

    def __post_init__(self) -> None:
        if self.input_shape is not None:  # lists from JSON or widgets: one hashable form
            object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))

    @classmethod
    def from_input_shape(
        cls,
        input_shape: tuple[int, ...] | list[int] | None,
        *,
        num_classes: int | None = None,
        vocab_size: int | None = None,
    ) -> ModelFacts:
        """Facts typed by hand (`--input-shape`, the Build page's custom input)."""
        shape = tuple(input_shape) if input_shape is not None else None
        return cls(input_shape=shape, num_classes=num_classes, vocab_size=vocab_size)

    @property
    def is_text(self) -> bool:
        return self.modality == TOKEN_MODALITY

    @property
    def input_dtype_name(self) -> DtypeName:
        return input_dtype_name(self.modality)

    @property
    def input_dtype(self) -> torch.dtype:
        """torch.int64 for token ids, else torch.float32."""
        return input_dtype_for(self.modality)

    def with_text_input(self) -> ModelFacts:
        """These facts for a model whose input is token ids (an Embedding reads it)."""
        return self if self.is_text else replace(self, modality=TOKEN_MODALITY)

    def assume_vocabulary(self, size: int = PLACEHOLDER_VOCAB) -> ModelFacts:
        """A placeholder vocabulary where none is known, so a text model can still be drawn
        and written out; a known vocabulary is kept."""
        if self.vocab_size is not None:
            return self
        return replace(self, vocab_size=size, vocab_assumed=True)

    def to_dict(self) -> dict:
        """JSON-ready form (for records and `--json` documents)."""
        return {
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "num_classes": self.num_classes,
            "vocab_size": self.vocab_size,
            "modality": self.modality,
            "input_dtype": self.input_dtype_name,
        }

    @classmethod
    def from_dict(cls, document: dict) -> ModelFacts:
        """The inverse of `to_dict` (unknown keys ignored)."""
        return cls(
            input_shape=document.get("input_shape"),
            num_classes=document.get("num_classes"),
            vocab_size=document.get("vocab_size"),
            modality=document.get("modality"),
        )
