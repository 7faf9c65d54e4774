"""int8: dynamic quantization of the exported ONNX file with onnxruntime's quantizer.

`quantize_dynamic` stores the weights of MatMul/Gemm and LSTM nodes as int8 and quantizes
their activations on the fly (integer matrix products). Two gaps, measured here and filled the
same way: onnxruntime has no int8 kernel for ONNX's GRU and RNN nodes (their weights would stay
float32 and a recurrent model would barely shrink), and its ConvInteger kernel ran a small CNN
about 20x slower than the float Conv at batch 64. For those, and any other large float weight
left, the weight is stored as int8 with a `DequantizeLinear` in front (weight-only int8: the
file shrinks about 4x, the layer computes in float32 as before).
`torch.ao.quantization` is deprecated upstream and is not used.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

WEIGHT_ONLY_MIN_ELEMENTS = 512
DYNAMIC_OPS = [
    "MatMul",
    "Gemm",
    "LSTM",
    "Attention",
]  # onnxruntime's fast int8 kernels  # smaller tensors (biases, shapes, scales) stay as they are


def quantize_onnx(source: Path, target: Path) -> dict[str, list[str]]:
    """Write the int8 version of the ONNX file `source` to `target`; the names of the weights
    stored as int8 by the dynamic quantizer and by the weight-only pass."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    source = _preprocessed(source, target.with_name(f"{target.stem}.pre.onnx"))
    quantize_dynamic(
        str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=DYNAMIC_OPS
    )
    model = onnx.load(str(target))
    dynamic = [i.name for i in model.graph.initializer if i.name.endswith("_quantized")]
    weight_only = _weight_only_int8(model)
    strip_debug_metadata(model)
    onnx.save(model, str(target))
    if source.name.endswith(".pre.onnx"):
        source.unlink(missing_ok=True)
    return {"dynamic": dynamic, "weight_only": weight_only}


def _preprocessed(source: Path, scratch: Path) -> Path:
    """onnxruntime's recommended step before quantizing (its quantizer warns without it):
    constants folded, so a weight reordered in the graph (a GRU's gates) is stored as the
    layer reads it and its int8 copy needs no reordering at run time. The file as it was when
    the step cannot be applied."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(source), str(scratch), skip_symbolic_shape=True)
    except Exception:  # an optimization, never a reason to fail
        scratch.unlink(missing_ok=True)
        return source
    return scratch


def strip_debug_metadata(model) -> None:
    """Drop the exporter's per-node debugging notes (Python stack traces, source names): a
    third of a small model's file, and nothing the runtime reads."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]  # shape hints; onnxruntime infers them again


def _weight_only_int8(model) -> list[str]:
    """Replace each large float32 weight left in float by int8 + scale and a DequantizeLinear
    node producing the original name (symmetric, per tensor, as the dynamic quantizer does)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    kept, nodes, done = [], [], []
    for initializer in graph.initializer:
        array = numpy_helper.to_array(initializer)
        if (
            initializer.data_type != TensorProto.FLOAT
            or array.ndim < 2
            or array.size < WEIGHT_ONLY_MIN_ELEMENTS
        ):
            kept.append(initializer)
            continue
        scale = np.float32(max(float(np.abs(array).max()), 1e-12) / 127.0)
        quantized = np.clip(np.round(array / scale), -127, 127).astype(np.int8)
        name = initializer.name
        kept += [
            numpy_helper.from_array(quantized, f"{name}_int8"),
            numpy_helper.from_array(np.array(scale, dtype=np.float32), f"{name}_int8_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), f"{name}_int8_zero_point"),
        ]
        nodes.append(
            helper.make_node(
                "DequantizeLinear",
                [f"{name}_int8", f"{name}_int8_scale", f"{name}_int8_zero_point"],
                [name],
                name=f"{name}_weight_only_int8",
            )
        )
        done.append(name)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for node in reversed(nodes):  # before every node that reads them
        graph.node.insert(0, node)
    return done


def rounded_like_int8(model: nn.Module) -> nn.Module:
    """A copy of `model` whose weight matrices are rounded to int8 and back (symmetric, per
    tensor): the weights the int8 file holds, in a model gradients can flow through, for the
    attribution check. Activations stay float32 here (the int8 file also rounds them)."""
    rounded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, parameter in rounded.named_parameters():
            if "weight" in name and parameter.dim() >= 2:
                scale = parameter.abs().max().clamp_min(1e-12) / 127.0
                parameter.copy_((parameter / scale).round().clamp(-127, 127) * scale)
    for module in rounded.modules():
        if isinstance(module, nn.RNNBase):
            module._init_flat_weights()
    return rounded
