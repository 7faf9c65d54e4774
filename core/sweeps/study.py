"""The Optuna side of a sweep: its study lives in the studio's own database.

Optuna's RDB storage is opened on the same SQLAlchemy URL (SQLite or PostgreSQL). Its tables
(studies, trials, trial_params, ...) sit beside the studio's and share no name with them, but
both Optuna and the studio keep their schema version in alembic's `alembic_version` table: the
studio's migrations own it (its revision is the studio's, e.g. "0005"), so the storage is opened
only after the studio's schema is migrated (Optuna then finds the table filled and leaves it
alone), with Optuna's version check skipped (it would read the studio's revision as its own and
refuse). Optuna creates its own tables with `create_all` on first use. On SQLite its engine gets
the studio's settings (busy timeout, BEGIN IMMEDIATE), so workers writing at once wait for each
other instead of failing with "database is locked".

Samplers are built afresh for every ask with seed = the sweep's seed + trials so far: processes
asking one after another never draw the same "random" start, and a sweep replays the same way.
"""

from __future__ import annotations

import itertools
import random
import threading
from typing import TYPE_CHECKING, Any

from core.config import get_settings
from core.store import db

if TYPE_CHECKING:
    import optuna

    from core.store.sweeps import Sweep
    from core.sweeps.params import Param

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
MEDIAN_STARTUP_MAX = 5  # Optuna's own default: compare against at least this many finished
# trials, fewer in a small sweep (a quarter of its trials, at least 1), so short sweeps prune too

_lock = threading.Lock()
_storages: dict[str, Any] = {}


def storage() -> optuna.storages.RDBStorage:
    """The Optuna storage on the studio's database, opened once per process and URL."""
    import optuna

    url = get_settings().database_url
    with _lock:
        opened = _storages.get(url)
        if opened is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # "Trial 3 finished" is ours
            engine = db.get_engine(url)  # the studio's migrations first: they own alembic_version
            sqlite = engine.dialect.name == "sqlite"
            kwargs: dict[str, Any] = (
                {"connect_args": {"timeout": db.SQLITE_BUSY_TIMEOUT_S}}
                if sqlite
                else {"pool_pre_ping": True}
            )
            opened = optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, skip_compatibility_check=True
            )
            if sqlite:
                db._configure_sqlite(opened.engine)  # WAL, busy timeout, BEGIN IMMEDIATE
                opened.engine.dispose()  # connections made before the listeners: gone
            _storages[url] = opened
    return opened


def forget_storages() -> None:
    """Close the storages opened in this process (tests; a process about to exit)."""
    with _lock:
        for opened in _storages.values():
            opened.engine.dispose()
        _storages.clear()


def load(sweep: Sweep, *, trials_so_far: int = 0, create: bool = False) -> optuna.Study:
    """The sweep's study, with its sampler seeded for the next ask; `create` makes it on first
    use (a plain load only reads, so status pages never take the write lock for it)."""
    import optuna

    from core.sweeps.params import Param

    params = [Param.from_dict(p) for p in sweep.space]
    sampler = make_sampler(sweep.sampler, params, seed=sweep.seed + trials_so_far)
    pruner = make_pruner(sweep.pruner, max_trials=sweep.max_trials, settings=sweep.settings)
    if not create:
        try:
            return optuna.load_study(
                study_name=sweep.study_name, storage=storage(), sampler=sampler, pruner=pruner
            )
        except KeyError:  # its creator died before making it: make it now
            pass
    return optuna.create_study(
        study_name=sweep.study_name,
        storage=storage(),
        direction=sweep.direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )


def make_sampler(name: str, params: list[Param], *, seed: int) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":  # every point is enqueued at creation (grid_points); none is sampled
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials asked while others still train are not sampled on top of them
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def grid_points(params: list[Param], *, seed: int) -> list[dict[str, Any]]:
    """Every combination of the parameters' choices, in an order shuffled by `seed`.

    A grid sweep enqueues these as its trials (Optuna's `enqueue_trial`) rather than using
    Optuna's GridSampler, which stops the study from inside `tell` and so needs
    `study.optimize` in one process; the studio's trials are asked and told by many."""
    points = [
        dict(zip([p.name for p in params], values, strict=True))
        for values in itertools.product(*(p.choices or () for p in params))
    ]
    random.Random(seed).shuffle(points)
    return points


def grid_size(params: list[Param]) -> int:
    size = 1
    for param in params:
        size *= len(param.choices or ())
    return size


def make_pruner(
    name: str, *, max_trials: int | None, settings: dict[str, Any]
) -> optuna.pruners.BasePruner:
    """The pruner; trials report their objective once per epoch (the step is the epoch)."""
    import optuna

    if name == "median":
        startup = max(1, min(MEDIAN_STARTUP_MAX, (max_trials or 20) // 4))
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if name == "hyperband":
        epochs = settings.get("epochs")
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=int(epochs) if epochs else "auto", reduction_factor=3
        )
    return optuna.pruners.NopPruner()
