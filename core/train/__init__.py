"""Training: run settings, devices, optimizers, the loop, callbacks, checkpoints, metrics."""

from core.train.callbacks import Callback, MetricRecord
from core.train.config import TrainConfig
from core.train.loop import FitResult, fit, seed_everything

__all__ = ["Callback", "FitResult", "MetricRecord", "TrainConfig", "fit", "seed_everything"]
