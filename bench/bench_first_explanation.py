"""How long the first explanation of a session takes, before and after loading ahead of time.

Each case runs in a fresh Python process, as a new server would, on a digits CNN trained here:
- cold: what the Explain page did before: import Captum, load the run's model (PyTorch's first
  trace imports torch._dynamo), then explain with two methods and the trust check.
- warm: what it does now: `app.explain_models` warmed up and the run prepared when a page showed
  it (Runs, Train or Explain itself); the person then asks, and waits only for the explanation.

Run: .venv/bin/python bench/bench_first_explanation.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASE = r"""
import sys, time
t0 = time.perf_counter()
import torch  # the server has it imported before any page runs
from core import runs
start = time.perf_counter()
run_id, mode = int(sys.argv[1]), sys.argv[2]
if mode == "warm":
    from app import explain_models
    explain_models.prepare(run_id, runs.get_run(run_id).step).result()  # ahead of time
    start = time.perf_counter()  # the person asks now
    ready = explain_models.loaded(run_id, runs.get_run(run_id).step)
    model, dataset = ready.model, ready.dataset
else:
    from core.explain import explain  # noqa: F401 (Captum)
    model, dataset, _ = runs.load_run_model(run_id)
from core.explain import explain
x = dataset.test.x[0]
for method in ("integrated_gradients", "grad_cam"):
    explain(model, x, method=method, dataset=dataset, label=0, sanity_check=True)
print(f"{time.perf_counter() - start:.3f}")
"""


def first_explanation_s(run_id: int, mode: str, env: dict) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CASE, str(run_id), mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as home:
        env = {**os.environ, "STUDIO_HOME": home, "STUDIO_DATABASE_URL": f"sqlite:///{home}/s.db"}
        os.environ.update(env)
        from core import runs
        from core.templates import get_template

        run_id = runs.train_run_foreground(
            spec=get_template("digits-cnn").spec, dataset="digits", config={"epochs": 1}
        )["run_id"]
        rounds = {"cold": [], "warm": []}
        for _ in range(3):  # interleaved, so a busy machine slows both alike
            for mode in rounds:
                rounds[mode].append(first_explanation_s(run_id, mode, env))
        cold, warm = (sorted(rounds[m])[1] for m in ("cold", "warm"))
        print("first explanation of a session (digits CNN, IG + Grad-CAM with the trust check)")
        print(f"  cold (before): {cold:.2f} s   median of {rounds['cold']}")
        print(f"  warm (after):  {warm:.2f} s   median of {rounds['warm']}")
        print(f"  ratio cold / warm: {cold / warm:.0f}x")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"(bench took {time.perf_counter() - start:.0f} s)")
