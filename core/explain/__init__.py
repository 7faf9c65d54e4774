"""Why did the model say that? Captum attributions behind one call, in plain language.

explanation = explain(model, x, method="integrated_gradients", dataset=dataset)
explanation.summary      # "The model is 93% sure this is 7. It relied most on ..."
explanation.attribution  # shaped like x
"""

from core.explain.attention import AttentionMap, attention_maps
from core.explain.explanation import Explanation, Prediction, explain, measure_region_effect
from core.explain.methods import METHOD_TITLES, METHODS, TEXT_METHODS, compute_attributions
from core.explain.summary import position_scores

__all__ = [
    "METHODS",
    "METHOD_TITLES",
    "TEXT_METHODS",
    "AttentionMap",
    "Explanation",
    "Prediction",
    "attention_maps",
    "compute_attributions",
    "explain",
    "measure_region_effect",
    "position_scores",
]
