"""Sweeps: search run settings and block arguments with Optuna; each trial is an ordinary run.

- core.sweeps.space: the parameters (`lr`, `batch_size`, `dropout`, `block.2.out_channels`),
  parsed and checked against the schemas that check runs and specs;
- core.sweeps.create: `create_sweep`, everything checked before anything is queued;
- core.sweeps.queue: the workers ask the study for trials when idle; reconcile; stop;
- core.sweeps.pruning: the loop callback that reports each epoch and prunes;
- core.sweeps.status: the trials, the best one, `studio sweep-status --json`;
- core.sweeps.study: the Optuna study in the studio's database.

Import from the submodules: this package imports nothing itself, so the CLI's parser (which
reads core.sweeps.study and core.sweeps.objective for its choices) stays light.
"""
