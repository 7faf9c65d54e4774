"""The training loop: tensors on the device, batches by indexing, one host sync per interval.

`fit` knows nothing about databases or files; it reports through `Callback` hooks and hands
resumable states to `on_checkpoint`. The order of events (so a crashed run can be resumed
without recording any step twice):

  each step:        control(step) -> train step
  every log_every:  on_metrics([train_loss, lr, samples_per_s])
  each epoch end:   on_metrics([... train, val_*]) -> on_checkpoint(state)
  the end:          on_metrics([test_*])

Records carry 1-based epochs and steps; checkpoint states count completed epochs and steps.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from core.errors import SettingsError, TrainingError
from core.train.callbacks import Callback, CallbackThread, MetricRecord
from core.train.checkpoint import FORMAT_VERSION, capture_rng_state, restore_rng_state, to_cpu_copy
from core.train.config import TrainConfig
from core.train.devices import device_label, resolve_device
from core.train.metrics import DEFAULT_EVAL_BATCH, evaluate, match_regression_shape
from core.train.optim import build_optimizer, build_scheduler

Status = Literal["completed", "stopped", "paused", "failed"]


@dataclass
class FitResult:
    status: Status
    epochs: int  # epochs reached (1-based; a partial epoch counts)
    steps: int  # optimizer steps done in total (including those before a resume)
    duration_s: float  # wall time of this call
    samples_per_s: float  # training throughput of this call (evaluation excluded)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each metric
    confusion_matrix: list[list[int]] | None = None  # [true class][predicted class], test split
    error: str | None = None  # plain message when status == "failed"
    best_val_accuracy: float | None = None
    stopped_early: bool = False  # early stopping ended this "completed" run before its length
    total_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python; call it before building the model for same-seed runs."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Batches per epoch; a lone last sample is skipped (BatchNorm cannot train on one)."""
    return train_size // batch_size + (1 if train_size % batch_size > 1 else 0)


def total_steps_for(config: TrainConfig, train_size: int) -> int:
    """How many optimizer steps `config` runs on a training set of `train_size` samples."""
    if config.steps is not None:
        return config.steps
    return config.epochs * steps_per_epoch(train_size, config.batch_size)


def epoch_permutation(train_size: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of `epoch` (0-based): a function of (seed, epoch) only, on the CPU, so a
    resumed run replays exactly the batches it would have seen."""
    mixed = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    generator = torch.Generator().manual_seed(int(mixed) & (2**63 - 1))
    return torch.randperm(train_size, generator=generator)


class _Diverged(Exception):
    def __init__(self, step: int, epoch: int, what: str) -> None:
        super().__init__(what)
        self.step, self.epoch, self.what = step, epoch, what


def _divergence_message(error: _Diverged, config: TrainConfig) -> str:
    clip = (
        f"a tighter gradient clip (now {config.grad_clip:g})"
        if config.grad_clip
        else "gradient clipping (grad_clip, e.g. 1.0)"
    )
    return (
        f"training diverged at step {error.step} (epoch {error.epoch}): {error.what}. "
        f"Try a lower learning rate (now {config.lr:g}), {clip}, "
        "or inputs and targets on a smaller scale."
    )


def _split(dataset: Any, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    split = getattr(dataset, name, None)
    if split is None or len(split.x) == 0:
        return None
    return split.x, split.y


def fit(
    model: nn.Module,
    dataset: Any,
    config: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    resume: dict[str, Any] | None = None,
) -> FitResult:
    """Train `model` on `dataset` (core.data.Dataset: train/val/test splits, task, num_classes).

    Returns status completed / stopped / paused / failed (NaN loss, CUDA out of memory).
    Raises SettingsError / TrainingError when the settings or the resume state cannot work
    for this model and dataset. Resuming from a state given to `on_checkpoint` continues
    exactly where the state was taken (bit-identical on CPU).
    """
    return _Fit(model, dataset, config, list(callbacks), resume).run()


class _Fit:
    """One call of `fit`: the run's state lives here so pause/checkpoint can capture it."""

    def __init__(
        self,
        model: nn.Module,
        dataset: Any,
        config: TrainConfig,
        callbacks: list[Callback],
        resume: dict[str, Any] | None,
    ) -> None:
        self.started = time.perf_counter()
        self.model, self.dataset, self.config, self.callbacks = model, dataset, config, callbacks
        self.resume = resume
        self.task = dataset.task
        if self.task not in ("classification", "regression"):
            raise TrainingError(f"dataset task {self.task!r} is not classification or regression")
        self.num_classes = int(dataset.num_classes) if self.task == "classification" else 0
        target = getattr(dataset, "target_normalization", None)  # regression targets' train std
        self.target_scale = float(target.std.reshape(-1)[0]) if target is not None else 1.0
        train = _split(dataset, "train")
        if train is None:
            raise SettingsError("the training set is empty; there is nothing to train on")
        self.train_size = len(train[0])
        config.validate(train_size=self.train_size, task=self.task)
        if config.early_stopping_patience and _split(dataset, "val") is None:
            raise SettingsError(
                "early_stopping_patience needs a validation split, and this dataset has none"
            )
        self.device = resolve_device(config.device)
        self.use_bf16 = self.device.type == "cuda" and config.precision in ("auto", "bf16")
        self.steps_per_epoch = steps_per_epoch(self.train_size, config.batch_size)
        self.total_steps = total_steps_for(config, self.train_size)
        if self.task == "classification":
            self.loss_fn: Callable[..., torch.Tensor] = partial(
                F.cross_entropy, label_smoothing=config.label_smoothing
            )
        else:
            self.loss_fn = F.mse_loss
        # progress; a resume overwrites these
        self.epoch = 0  # completed epochs
        self.position = 0  # batches done in the current epoch
        self.step = 0  # optimizer steps done
        self.pending: list[torch.Tensor] = []  # per-step losses since the last flush (device)
        self.best_val_loss = math.inf
        self.bad_epochs = 0
        self.best_val_accuracy: float | None = None
        self.last_val_step = -1
        self.metrics: dict[str, float] = {}
        self.train_time = 0.0  # this call's training time, evaluation excluded
        self.samples = 0  # samples trained in this call
        self.interval_samples = 0
        self.last_lr = config.lr
        overridden = [
            cb for cb in callbacks if type(cb).on_checkpoint is not Callback.on_checkpoint
        ]
        self.wants_checkpoints = bool(overridden)

    # ---- the run ----------------------------------------------------------------------------

    def run(self) -> FitResult:
        self.helper = CallbackThread() if any(cb.background for cb in self.callbacks) else None
        try:
            result = self._run()
        except BaseException:
            if self.helper is not None:
                self.helper.close(raise_error=False)
            raise
        if self.helper is not None:
            self.helper.close()  # every record and checkpoint is written when fit returns
            result.duration_s = time.perf_counter() - self.started
        return result

    def _run(self) -> FitResult:
        config = self.config
        oom: str | None = None
        try:
            self._setup()
            return self._train()
        except _Diverged as error:
            return self._result("failed", error=_divergence_message(error, config))
        except torch.OutOfMemoryError:
            oom = self._oom_message()
        # out of memory: drop every reference to device memory before reporting
        self.pending.clear()
        for name in ("optimizer", "scheduler", "train_x", "train_y", "val", "test", "params"):
            self.__dict__.pop(name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return self._result("failed", error=oom)

    def _oom_message(self) -> str:
        size = self.config.batch_size
        where = device_label(self.device)
        if self.step == 0 and not hasattr(self, "optimizer"):
            return (
                f"out of memory on {where} while moving the model and dataset there: they do "
                "not fit; use a smaller model or dataset, or device 'cpu'"
            )
        if size > 1:
            return (
                f"out of memory on {where} at step {self.step} with batch size {size}: "
                f"try batch size {size // 2} or smaller"
            )
        return (
            f"out of memory on {where} with batch size 1: the model is too large for this "
            "device; use a smaller model or device 'cpu'"
        )

    def _setup(self) -> None:
        config, device, dataset = self.config, self.device, self.dataset
        if self.resume is None:
            seed_everything(config.seed)
        self.model.to(device)
        self.train_x = dataset.train.x.to(device)
        self.train_y = dataset.train.y.to(device)
        val, test = _split(dataset, "val"), _split(dataset, "test")
        self.val = (val[0].to(device), val[1].to(device)) if val else None
        self.test = (test[0].to(device), test[1].to(device)) if test else None
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config)
        self.scheduler = build_scheduler(
            self.optimizer,
            config,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
        )
        if self.resume is not None:
            self._restore(self.resume)
        self.last_lr = self.optimizer.param_groups[0]["lr"]

    def _autocast(self) -> AbstractContextManager:
        if self.use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _train(self) -> FitResult:
        config, model, optimizer, scheduler = (
            self.config,
            self.model,
            self.optimizer,
            self.scheduler,
        )
        train_x, train_y, loss_fn = self.train_x, self.train_y, self.loss_fn
        batch_size, log_every, clip = config.batch_size, config.log_every, config.grad_clip
        total, per_epoch, params = self.total_steps, self.steps_per_epoch, self.params
        regression = self.task == "regression"
        controls = [cb.control for cb in self.callbacks if type(cb).control is not Callback.control]
        group = optimizer.param_groups[0]
        autocast = self._autocast
        for callback in self.callbacks:
            callback.on_start(total_steps=total, start_step=self.step, epoch=self.epoch + 1)
        interval_start = time.perf_counter()
        stopped_early = False
        while self.step < total and not stopped_early:
            order = epoch_permutation(self.train_size, config.seed, self.epoch).to(self.device)
            model.train()
            position, step = self.position, self.step
            while position < per_epoch and step < total:
                for control in controls:
                    decision = control(step=step)
                    if decision != "continue":
                        self.position, self.step = position, step
                        elapsed = time.perf_counter() - interval_start
                        self.train_time += elapsed
                        return self._interrupt(decision, elapsed)
                index = order[position * batch_size : (position + 1) * batch_size]
                inputs, targets = train_x[index], train_y[index]
                with autocast():
                    outputs = model(inputs)
                    if regression:
                        outputs = match_regression_shape(outputs, targets)
                    loss = loss_fn(outputs, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(params, clip)
                self.last_lr = group["lr"]
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                self.pending.append(loss.detach())
                self.interval_samples += len(index)
                position += 1
                step += 1
                if step % log_every == 0 and position < per_epoch and step < total:
                    self.position, self.step = position, step
                    now = time.perf_counter()
                    self.train_time += now - interval_start
                    self._emit(self._flush(now - interval_start))
                    interval_start = time.perf_counter()
            self.position, self.step = position, step
            if position == per_epoch:
                now = time.perf_counter()
                self.train_time += now - interval_start
                stopped_early = self._close_epoch(now - interval_start)
                interval_start = time.perf_counter()
        if self.last_val_step != self.step:  # a steps run that ends mid-epoch
            now = time.perf_counter()
            self.train_time += now - interval_start
            self._close_epoch(now - interval_start)
        return self._finish(stopped_early)

    # ---- recording ----------------------------------------------------------------------------

    def _record_epoch(self) -> int:
        """1-based epoch of the step just done."""
        return self.epoch + 1 if self.position > 0 else max(self.epoch, 1)

    def _flush(self, elapsed: float) -> list[MetricRecord]:
        """The interval's records; the one host sync of the interval. Raises _Diverged."""
        if not self.pending:
            return []
        losses = torch.stack(self.pending)
        mean = losses.float().mean().item()
        count = len(self.pending)
        epoch = self._record_epoch()
        if not math.isfinite(mean):
            finite = torch.isfinite(losses).tolist()
            first_bad = finite.index(False)
            bad_value = losses[first_bad].item()
            what = "the loss became NaN" if math.isnan(bad_value) else "the loss became infinite"
            raise _Diverged(self.step - count + 1 + first_bad, epoch, what)
        self.pending = []
        samples, self.interval_samples = self.interval_samples, 0
        self.samples += samples
        speed = samples / elapsed if elapsed > 0 else 0.0
        self.metrics["train_loss"] = mean
        self.metrics["lr"] = self.last_lr
        return [
            MetricRecord("train_loss", self.step, epoch, mean),
            MetricRecord("lr", self.step, epoch, float(self.last_lr)),
            MetricRecord("samples_per_s", self.step, epoch, speed),
        ]

    def _emit(self, records: list[MetricRecord]) -> None:
        if records:
            for callback in self.callbacks:
                if callback.background:
                    self.helper.submit(callback.on_metrics, records)
                else:
                    callback.on_metrics(records)

    def _check_weights(self, epoch: int) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        if not bool(finite.item()):
            raise _Diverged(self.step, epoch, "the model weights became NaN or infinite")

    def _evaluate(self, split: tuple[torch.Tensor, torch.Tensor], *, confusion: bool = False):
        batch = max(DEFAULT_EVAL_BATCH, self.config.batch_size)
        while True:
            try:
                return evaluate(
                    self.model,
                    *split,
                    task=self.task,
                    num_classes=self.num_classes,
                    loss_fn=self.loss_fn,
                    batch_size=batch,
                    autocast=self._autocast(),
                    with_confusion=confusion,
                    target_scale=self.target_scale,
                )
            except torch.OutOfMemoryError:
                if batch <= self.config.batch_size:
                    raise
                batch = max(self.config.batch_size, batch // 2)
                torch.cuda.empty_cache()

    def _close_epoch(self, elapsed: float) -> bool:
        """Flush, validate, record, checkpoint. True when early stopping says stop."""
        epoch = self._record_epoch()
        records = self._flush(elapsed)
        self._check_weights(epoch)
        epoch_metrics: dict[str, float] = {}
        if self.val is not None:
            values = self._evaluate(self.val)
            if not math.isfinite(values["loss"]):
                raise _Diverged(self.step, epoch, "the validation loss became NaN or infinite")
            for key, value in values.items():
                epoch_metrics[f"val_{key}"] = float(value)
        if "train_loss" in self.metrics:
            epoch_metrics.setdefault("train_loss", self.metrics["train_loss"])
        self.metrics.update(epoch_metrics)
        records += [
            MetricRecord(name, self.step, epoch, value)
            for name, value in epoch_metrics.items()
            if name.startswith("val_")
        ]
        self._emit(records)
        self.last_val_step = self.step
        if "val_accuracy" in epoch_metrics:
            self.best_val_accuracy = max(
                self.best_val_accuracy or 0.0, epoch_metrics["val_accuracy"]
            )
        full_epoch = self.position == self.steps_per_epoch
        if full_epoch:
            self.epoch += 1
            self.position = 0
        stop = False
        if full_epoch and "val_loss" in epoch_metrics:
            if epoch_metrics["val_loss"] < self.best_val_loss:
                self.best_val_loss, self.bad_epochs = epoch_metrics["val_loss"], 0
            else:
                self.bad_epochs += 1
            patience = self.config.early_stopping_patience
            stop = (
                patience is not None
                and self.bad_epochs >= patience
                and self.step < self.total_steps
            )
        self._checkpoint(epoch_metrics)
        return stop

    def _checkpoint(self, metrics: dict[str, float]) -> None:
        if not self.wants_checkpoints:
            return
        state = self.state()
        for callback in self.callbacks:
            hook = callback.on_checkpoint
            kwargs = {"epoch": self.epoch, "step": self.step, "metrics": dict(metrics)}
            if callback.background:
                self.helper.submit(hook, state, **kwargs)
            else:
                hook(state, **kwargs)

    def _interrupt(self, decision: str, elapsed: float) -> FitResult:
        if decision == "stop":
            self._emit(self._flush(elapsed))
            return self._result("stopped")
        if decision != "pause":
            raise TrainingError(
                f"control() returned {decision!r}; expected continue, stop or pause"
            )
        # a pause keeps the unflushed losses in the state, so they are recorded exactly once
        epoch = self._record_epoch()
        if self.pending:
            losses = torch.stack(self.pending)
            if not bool(torch.isfinite(losses).all().item()):
                self._flush(elapsed)  # raises _Diverged with the step
        self._check_weights(epoch)
        self._checkpoint(dict(self.metrics))
        return self._result("paused")

    def _finish(self, stopped_early: bool) -> FitResult:
        confusion = None
        if self.test is not None:
            values = self._evaluate(self.test, confusion=self.task == "classification")
            confusion = values.pop("confusion", None)
            test_metrics = {f"test_{key}": float(value) for key, value in values.items()}
            self.metrics.update(test_metrics)
            epoch = max(self.epoch + (1 if self.position else 0), 1)
            self._emit(
                [
                    MetricRecord(name, self.step, epoch, value)
                    for name, value in test_metrics.items()
                ]
            )
        return self._result("completed", confusion=confusion, stopped_early=stopped_early)

    def _result(
        self,
        status: Status,
        *,
        error: str | None = None,
        confusion: list[list[int]] | None = None,
        stopped_early: bool = False,
    ) -> FitResult:
        return FitResult(
            status=status,
            epochs=self.epoch + (1 if self.position else 0),
            steps=self.step,
            duration_s=time.perf_counter() - self.started,
            samples_per_s=(self.samples + self.interval_samples) / self.train_time
            if self.train_time > 0
            else 0.0,
            metrics=dict(self.metrics),
            confusion_matrix=confusion,
            error=error,
            best_val_accuracy=self.best_val_accuracy,
            stopped_early=stopped_early,
            total_steps=self.total_steps,
        )

    # ---- checkpoint state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything a bit-exact resume needs, as CPU copies of plain values and tensors."""
        pending = (
            torch.stack(self.pending).detach().float().cpu()
            if self.pending
            else torch.zeros(0, dtype=torch.float32)
        )
        return {
            "format": FORMAT_VERSION,
            "model": to_cpu_copy(self.model.state_dict()),
            "optimizer": to_cpu_copy(self.optimizer.state_dict()),
            "scheduler": to_cpu_copy(self.scheduler.state_dict()) if self.scheduler else None,
            "rng": capture_rng_state(),
            "epoch": self.epoch,
            "position": self.position,
            "step": self.step,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "pending_losses": pending,
            "early_stopping": {"best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs},
            "best_val_accuracy": self.best_val_accuracy,
            "last_val_step": self.last_val_step,
            "metrics": dict(self.metrics),
            "config": self.config.to_dict(),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        config = self.config
        if state.get("format") != FORMAT_VERSION:
            raise TrainingError(
                f"checkpoint format {state.get('format')!r} is not supported (expected "
                f"{FORMAT_VERSION})"
            )
        saved = state.get("config", {})
        for key in ("batch_size", "seed", "optimizer", "scheduler"):
            if key in saved and saved[key] != getattr(config, key):
                raise TrainingError(
                    f"cannot resume: the checkpoint was trained with {key}={saved[key]!r} but "
                    f"the settings now say {key}={getattr(config, key)!r}"
                )
        if state["steps_per_epoch"] != self.steps_per_epoch:
            raise TrainingError(
                f"cannot resume: the checkpoint had {state['steps_per_epoch']} batches per epoch "
                f"and this training set gives {self.steps_per_epoch}; is it the same dataset?"
            )
        if state["total_steps"] != self.total_steps and config.scheduler in ("cosine", "onecycle"):
            raise TrainingError(
                f"cannot resume: the {config.scheduler} schedule was planned for "
                f"{state['total_steps']} steps, the settings now give {self.total_steps}"
            )
        if state["step"] > self.total_steps:
            raise TrainingError(
                f"cannot resume: the checkpoint is at step {state['step']}, beyond the "
                f"{self.total_steps} steps these settings run"
            )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise TrainingError(f"the checkpoint does not fit this model: {error}") from None
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        self.epoch, self.position, self.step = state["epoch"], state["position"], state["step"]
        self.pending = [loss.to(self.device) for loss in state["pending_losses"].unbind()]
        self.best_val_loss = float(state["early_stopping"]["best_val_loss"])
        self.bad_epochs = int(state["early_stopping"]["bad_epochs"])
        self.best_val_accuracy = state.get("best_val_accuracy")
        self.last_val_step = int(state.get("last_val_step", -1))
        self.metrics = dict(state.get("metrics", {}))
