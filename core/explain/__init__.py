"""Why did the model say that? Captum attributions behind one call, in plain language.

explanation = explain(model, x, method="integrated_gradients", dataset=dataset)
explanation.summary      # "The model is 93% sure this is 7. It relied most on ..."
explanation.attribution  # shaped like x

The names below load on first use, so `studio` commands that never explain do not pay for
importing Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

METHODS = ("saliency", "integrated_gradients", "gradient_shap", "occlusion", "grad_cam")
TEXT_METHODS = ("integrated_gradients", "saliency", "grad_cam")
METHOD_TITLES = {
    "saliency": "Saliency",
    "integrated_gradients": "Integrated Gradients",
    "gradient_shap": "Gradient SHAP",
    "occlusion": "Occlusion",
    "grad_cam": "Grad-CAM",
}

_LAZY = {
    "AttentionMap": "core.explain.attention",
    "attention_maps": "core.explain.attention",
    "Explanation": "core.explain.explanation",
    "Prediction": "core.explain.explanation",
    "explain": "core.explain.explanation",
    "measure_region_effect": "core.explain.explanation",
    "compute_attributions": "core.explain.methods",
    "position_scores": "core.explain.summary",
}

__all__ = ["METHODS", "METHOD_TITLES", "TEXT_METHODS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'core.explain' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
