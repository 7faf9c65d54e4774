"""The training loop: tensors on the device, batches by indexing, one host sync per interval.

`fit` knows nothing about databases or files; it reports through `Callback` hooks and hands
resumable states to `on_checkpoint`. When to record, validate, checkpoint and stop early are
pure decisions in core.train.policy. The order of events (so a crashed run can be resumed
without recording any step twice):

  each step:             control(step) -> train step
  every log_every:       on_metrics([train_loss, lr, samples_per_s])
  a validating epoch
  end, and the last step: on_metrics([... train, val_*])
  an epoch end:          on_checkpoint(state) when one is due (the first epoch end, then at
                         most every `checkpoint_every_s`); always at the end, a pause, a stop
  the end:               on_metrics([test_*])

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
from core.states import RunStatus
from core.train.callbacks import Callback, CallbackThread, MetricRecord
from core.train.checkpoint import LoopProgress, Plan, capture_state, restore_state
from core.train.config import TrainConfig
from core.train.devices import device_label, resolve_device
from core.train.distributed import Shard
from core.train.finetune import FineTune
from core.train.metrics import DEFAULT_EVAL_BATCH, evaluate, match_regression_shape
from core.train.optim import build_optimizer, build_scheduler
from core.train.policy import (
    checkpoint_due,
    early_stop_decision,
    epoch_of_step,
    should_record,
    should_validate,
    validation_every,
)

# the run statuses a fit can end in (a stop request ends it cancelled, as the database says)
Status = Literal[
    RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.PAUSED, RunStatus.FAILED, RunStatus.PRUNED
]


@dataclass
class FitResult:
    status: Status
    epochs: int  # epoch of the last step (1-based; a partial epoch counts)
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
    checkpoint_every_s: float | None = None,
    shard: Shard | None = None,
) -> FitResult:
    """Train `model` on `dataset` (core.data.Dataset: train/val/test splits, task, num_classes).

    `config` is an already valid TrainConfig; only what depends on the dataset is checked here.
    Returns status completed / stopped / paused / failed (NaN loss, CUDA out of memory).
    Raises SettingsError / TrainingError when the settings or the resume state cannot work
    for this model and dataset. Resuming from a state given to `on_checkpoint` continues
    exactly where the state was taken (bit-identical on CPU). `checkpoint_every_s` spaces
    epoch-end checkpoints (default: the `STUDIO_CHECKPOINT_EVERY_S` setting; 0 = every epoch).
    `shard`: this process's place in a multi-process run (core.train.distributed): the model
    trains wrapped in DistributedDataParallel on this process's share of each batch.
    """
    if checkpoint_every_s is None:
        from core.config import get_settings

        checkpoint_every_s = get_settings().checkpoint_every_s
    run = _Fit(model, dataset, config, list(callbacks), resume, checkpoint_every_s)
    run.shard = shard
    return run.run()


@dataclass
class _Throughput:
    """Training time and samples of this call (evaluation and recording excluded)."""

    train_time: float = 0.0
    samples: int = 0  # samples trained in recorded intervals
    interval_samples: int = 0  # samples since the last record
    interval_time: float = 0.0  # training time since the last record
    stretch_start: float = field(default_factory=time.perf_counter)

    def start(self) -> None:
        """A stretch of training begins."""
        self.stretch_start = time.perf_counter()

    def stop(self) -> None:
        """A stretch of training ends (to evaluate, record or checkpoint)."""
        elapsed = time.perf_counter() - self.stretch_start
        self.train_time += elapsed
        self.interval_time += elapsed

    def take_interval(self) -> float:
        """Samples per second since the last record."""
        speed = self.interval_samples / self.interval_time if self.interval_time > 0 else 0.0
        self.samples += self.interval_samples
        self.interval_samples, self.interval_time = 0, 0.0
        return speed

    def samples_per_s(self) -> float:
        total = self.samples + self.interval_samples
        return total / self.train_time if self.train_time > 0 else 0.0


class _Fit:
    """One call of `fit`: the model, data and optimizer, the resumable `progress`, and the
    steps of training. What to do when is asked of core.train.policy."""

    shard: Shard | None = None  # set by fit for one process of a multi-process run

    def __init__(
        self,
        model: nn.Module,
        dataset: Any,
        config: TrainConfig,
        callbacks: list[Callback],
        resume: dict[str, Any] | None,
        checkpoint_every_s: float,
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
        self.device = resolve_device(config.device)
        self.use_bf16 = self.device.type == "cuda" and config.precision in ("auto", "bf16")
        self.steps_per_epoch = steps_per_epoch(self.train_size, config.batch_size)
        self.total_steps = total_steps_for(config, self.train_size)
        self.plan = Plan(self.steps_per_epoch, self.total_steps, config.to_dict())
        self.validate_every = validation_every(
            self.steps_per_epoch,
            self.total_steps,
            early_stopping=config.early_stopping_patience is not None,
        )
        if self.task == "classification":
            self.loss_fn: Callable[..., torch.Tensor] = partial(
                F.cross_entropy, label_smoothing=config.label_smoothing
            )
        else:
            self.loss_fn = F.mse_loss
        self.progress = LoopProgress()  # a resume replaces it
        self.meter = _Throughput()
        self.last_lr = config.lr
        self.checkpoint_every_s = checkpoint_every_s
        self.last_checkpoint_at: float | None = None
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
        oom: str | None = None
        try:
            self._setup()
            return self._train()
        except _Diverged as error:
            return self._result(RunStatus.FAILED, error=_divergence_message(error, self.config))
        except torch.OutOfMemoryError:
            oom = self._oom_message()
        # out of memory: drop every reference to device memory before reporting
        self.progress.pending_losses.clear()
        for name in ("optimizer", "scheduler", "train_x", "train_y", "val", "test", "params"):
            self.__dict__.pop(name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return self._result(RunStatus.FAILED, error=oom)

    def _oom_message(self) -> str:
        size = self.config.batch_size
        where = device_label(self.device)
        if self.progress.step == 0 and not hasattr(self, "optimizer"):
            return (
                f"out of memory on {where} while moving the model and dataset there: they do "
                "not fit; use a smaller model or dataset, or device 'cpu'"
            )
        if size > 1:
            return (
                f"out of memory on {where} at step {self.progress.step} with batch size {size}: "
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
        self.finetune = FineTune.prepare(self.model, config)  # freeze_epochs, body_lr_factor
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config)
        self.finetune.split_lr(self.optimizer)
        self.scheduler = build_scheduler(
            self.optimizer,
            config,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
        )
        if self.resume is not None:
            self.progress = restore_state(
                self.resume,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                plan=self.plan,
                device=device,
            )
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        # what trains: the model itself, or DistributedDataParallel around it (same weights)
        self.train_model = self.shard.wrap(self.model) if self.shard else self.model

    def _autocast(self) -> AbstractContextManager:
        if self.use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _train(self) -> FitResult:
        config, model, optimizer, scheduler = (
            self.config,
            self.train_model,
            self.optimizer,
            self.scheduler,
        )
        train_x, train_y, loss_fn, shard = self.train_x, self.train_y, self.loss_fn, self.shard
        batch_size, log_every, clip = config.batch_size, config.log_every, config.grad_clip
        total, per_epoch, params = self.total_steps, self.steps_per_epoch, self.params
        progress, meter = self.progress, self.meter
        pending = progress.pending_losses
        regression = self.task == "regression"
        controls = [cb.control for cb in self.callbacks if type(cb).control is not Callback.control]
        group = optimizer.param_groups[0]
        autocast = self._autocast
        for callback in self.callbacks:
            callback.on_start(
                total_steps=total,
                start_step=progress.step,
                epoch=epoch_of_step(progress.step + 1, per_epoch),
            )
        meter.start()
        stopped_early = False
        while progress.step < total and not stopped_early:
            epoch = progress.step // per_epoch  # 0-based here: it seeds the sample order
            order = epoch_permutation(self.train_size, config.seed, epoch).to(self.device)
            model.train()
            self.finetune.at_epoch(epoch)
            step, end = progress.step, min(total, (epoch + 1) * per_epoch)
            while step < end:
                for control in controls:
                    decision = control(step=step)
                    if decision != "continue":
                        progress.step = step
                        meter.stop()
                        return self._interrupt(decision)
                position = step - epoch * per_epoch
                index = order[position * batch_size : (position + 1) * batch_size]
                samples, weight = len(index), 1.0  # the global batch, this process's weight
                if shard is not None:
                    index, weight = shard.local(index)
                inputs, targets = train_x[index], train_y[index]
                with autocast():
                    outputs = model(inputs)
                    if regression:
                        outputs = match_regression_shape(outputs, targets)
                    loss = loss_fn(outputs, targets)
                optimizer.zero_grad(set_to_none=True)
                (loss * weight if shard is not None else loss).backward()
                if clip is not None:
                    nn.utils.clip_grad_norm_(params, clip)
                self.last_lr = group["lr"]
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                pending.append(loss.detach())
                meter.interval_samples += samples
                step += 1
                if step < end and should_record(step, log_every=log_every):
                    progress.step = step  # the epoch's last step is recorded by _end_epoch
                    meter.stop()
                    self._emit(self._flush())
                    meter.start()
            progress.step = step
            meter.stop()
            stopped_early = self._end_epoch()
            meter.start()
        return self._finish(stopped_early)

    # ---- recording ----------------------------------------------------------------------------

    def _epoch(self) -> int:
        """1-based epoch of the last step done."""
        return epoch_of_step(self.progress.step, self.steps_per_epoch)

    def _flush(self) -> list[MetricRecord]:
        """The interval's records; the one host sync of the interval. Raises _Diverged."""
        progress = self.progress
        pending = progress.pending_losses
        if not pending:
            return []
        losses = torch.stack(pending)
        mean = losses.float().mean().item()
        epoch = self._epoch()
        if not math.isfinite(mean):
            finite = torch.isfinite(losses).tolist()
            first_bad = finite.index(False)
            bad_value = losses[first_bad].item()
            what = "the loss became NaN" if math.isnan(bad_value) else "the loss became infinite"
            raise _Diverged(progress.step - len(pending) + 1 + first_bad, epoch, what)
        pending.clear()  # in place: the training loop holds this list
        speed = self.meter.take_interval()
        progress.metrics["train_loss"] = mean
        progress.metrics["lr"] = self.last_lr
        return [
            MetricRecord("train_loss", progress.step, epoch, mean),
            MetricRecord("lr", progress.step, epoch, float(self.last_lr)),
            MetricRecord("samples_per_s", progress.step, epoch, speed),
        ]

    def _emit(self, records: list[MetricRecord]) -> None:
        if records:
            for callback in self.callbacks:
                if callback.background:
                    self.helper.submit(callback.on_metrics, records)
                else:
                    callback.on_metrics(records)

    def _check_finite(self) -> None:
        """Raises _Diverged when a pending loss or a weight is NaN or infinite: a diverged
        state is never checkpointed."""
        pending = self.progress.pending_losses
        if pending and not bool(torch.isfinite(torch.stack(pending)).all().item()):
            self._flush()  # raises _Diverged naming the step
        finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        if not bool(finite.item()):
            raise _Diverged(
                self.progress.step, self._epoch(), "the model weights became NaN or infinite"
            )

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

    def _validate(self) -> dict[str, float]:
        """val_* metrics of the model now (empty without a validation split)."""
        if self.val is None:
            return {}
        values = self._evaluate(self.val)
        if not math.isfinite(values["loss"]):
            raise _Diverged(
                self.progress.step, self._epoch(), "the validation loss became NaN or infinite"
            )
        return {f"val_{key}": float(value) for key, value in values.items()}

    def _end_epoch(self) -> bool:
        """After an epoch's last step (or the run's): record, validate and checkpoint as the
        policy says. True when early stopping says stop."""
        progress, per_epoch = self.progress, self.steps_per_epoch
        step = progress.step
        validating = should_validate(
            step, steps_per_epoch=per_epoch, total_steps=self.total_steps, every=self.validate_every
        )
        measured: dict[str, float] = {}
        stop = False
        if validating or should_record(step, log_every=self.config.log_every):
            records = self._flush()
            if validating:
                self._check_finite()
                measured = self._validate()
                progress.metrics.update(measured)
                progress.last_val_step = step
                records += [MetricRecord(k, step, self._epoch(), v) for k, v in measured.items()]
            self._emit(records)
        if "val_accuracy" in measured:
            progress.best_val_accuracy = max(
                progress.best_val_accuracy or 0.0, measured["val_accuracy"]
            )
        if "val_loss" in measured and step % per_epoch == 0:
            progress.early_stopping, stop = early_stop_decision(
                progress.early_stopping,
                measured["val_loss"],
                patience=self.config.early_stopping_patience,
            )
            stop = stop and step < self.total_steps
        final = stop or step >= self.total_steps
        now = time.monotonic()
        if final or checkpoint_due(
            now=now, last_checkpoint_at=self.last_checkpoint_at, every_s=self.checkpoint_every_s
        ):
            self._checkpoint(measured)
        return stop

    def _checkpoint(self, measured: dict[str, float]) -> None:
        """Hand a resumable state to the callbacks, with the validation metrics measured at
        this step (if any) and the latest training loss."""
        if not self.wants_checkpoints:
            return
        self._check_finite()
        self.last_checkpoint_at = time.monotonic()
        progress = self.progress
        state = capture_state(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            progress=progress,
            plan=self.plan,
        )
        metrics = dict(measured)
        if "train_loss" in progress.metrics:
            metrics.setdefault("train_loss", progress.metrics["train_loss"])
        kwargs = {"epoch": progress.step // self.steps_per_epoch, "step": progress.step}
        for callback in self.callbacks:
            if callback.background:
                self.helper.submit(callback.on_checkpoint, state, **kwargs, metrics=dict(metrics))
            else:
                callback.on_checkpoint(state, **kwargs, metrics=dict(metrics))

    def _interrupt(self, decision: str) -> FitResult:
        if decision in ("stop", "prune"):
            self._emit(self._flush())
            self._checkpoint({})  # the model trained so far stays loadable
            return self._result(RunStatus.CANCELLED if decision == "stop" else RunStatus.PRUNED)
        if decision != "pause":
            raise TrainingError(
                f"control() returned {decision!r}; expected continue, stop, pause or prune"
            )
        # a pause keeps the unflushed losses in the state, so they are recorded exactly once
        self._check_finite()
        self._checkpoint({})
        return self._result(RunStatus.PAUSED)

    def _finish(self, stopped_early: bool) -> FitResult:
        confusion = None
        if self.test is not None:
            values = self._evaluate(self.test, confusion=self.task == "classification")
            confusion = values.pop("confusion", None)
            test_metrics = {f"test_{key}": float(value) for key, value in values.items()}
            self.progress.metrics.update(test_metrics)
            step, epoch = self.progress.step, self._epoch()
            self._emit([MetricRecord(k, step, epoch, v) for k, v in test_metrics.items()])
        return self._result(RunStatus.COMPLETED, confusion=confusion, stopped_early=stopped_early)

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
            epochs=self._epoch(),
            steps=self.progress.step,
            duration_s=time.perf_counter() - self.started,
            samples_per_s=self.meter.samples_per_s(),
            metrics=dict(self.progress.metrics),
            confusion_matrix=confusion,
            error=error,
            best_val_accuracy=self.progress.best_val_accuracy,
            stopped_early=stopped_early,
            total_steps=self.total_steps,
        )
