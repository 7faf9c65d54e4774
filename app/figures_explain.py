"""The explanation figure builders, for the pages: they live in core.explain.figures so that the
shareable report (core/report) draws the same pictures without importing the app."""

from core.explain.figures import (  # noqa: F401  (re-exported for the pages and their tests)
    AWAY,
    POSITIVE_SCALE,
    SIGNED_OVERLAY_SCALE,
    SIGNED_SCALE,
    SKIPPED_TOKENS,
    TOWARDS,
    attention_map_figure,
    explanation_figure,
    feature_bars_figure,
    image_overlay_figure,
    probability_bars_figure,
    sample_figure,
    signal_bars_figure,
    spatial_map,
    token_highlight_figure,
)
