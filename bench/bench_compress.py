"""Compression, measured side by side in one run (issue 11's goals).

1. digits CNN template: 50% of its channels pruned (structured) + a short fine-tune, against
   its parent: FLOPs per sample (goal <= 0.35x) and test accuracy (goal: within 1 point).
2. MNIST-1D GRU template: int8 ONNX against the float32 ONNX file: size on disk (goal
   <= 0.35x), test accuracy (within 1 point), CPU latency at batch 1 (goal: <= float32).
Both report the attribution agreement (Integrated Gradients, 100 test samples).

Everything runs through `compress_run` (what `studio compress` calls) against a throwaway
STUDIO_HOME; the parents train through the studio's own foreground path. Latencies are medians
of interleaved calls on one CPU thread. Run: .venv/bin/python bench/bench_compress.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

DIGITS_EPOCHS = 15  # the parent: about 98% (its plateau)
FINETUNE_EPOCHS = 10  # the pruned model's fine-tune
FINETUNE_LR = 1e-3  # a third of the parent's: the weights are already close
GRU_EPOCHS = 8  # short of the GRU's plateau: int8 is compared with the same float model
THREADS = 1  # training and timing on one thread: steady on a shared, busy machine


def train(template: str, dataset: str, epochs: int) -> dict:
    from core import runs
    from core.templates import get_template

    config = {"epochs": epochs, "device": "cpu", "optimizer": "adam", "lr": 3e-3, "seed": 0}
    result = runs.train_run_foreground(
        spec=get_template(template).spec, dataset=dataset, config=config
    )
    assert result["status"] == "completed", result["error"]
    return result


def show(title: str, report, goals: dict[str, str]) -> None:
    from core.compress.table import table_rows

    document = report.to_json()
    print(f"\n== {title}  ({document['method']}; runtime {document['after']['runtime']})")
    print(f"{'':<26}{'before':>12}{'after':>12}{'change':>10}  goal")
    for row in table_rows(document):
        goal = goals.get(row["figure"], "")
        print(f"{row['figure']:<26}{row['before']:>12}{row['after']:>12}{row['ratio']:>10}  {goal}")
    if document["attribution_agreement"]:
        print(document["attribution_agreement"]["sentence"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs: checks the script runs")
    args = parser.parse_args()
    digits_epochs, finetune_epochs, gru_epochs = (
        (3, 2, 2) if args.quick else (DIGITS_EPOCHS, FINETUNE_EPOCHS, GRU_EPOCHS)
    )
    import torch

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as home:
        os.environ["STUDIO_HOME"] = home
        os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{home}/studio.db"
        from core.compress import CompressOptions, compress_run

        started = time.perf_counter()
        parent = train("digits-cnn", "digits", digits_epochs)
        pruned = compress_run(
            parent["run_id"],
            CompressOptions(
                prune=0.5,
                finetune_epochs=finetune_epochs,
                foreground=True,
                settings={"lr": FINETUNE_LR},
            ),
        )
        show(
            f"digits-cnn (run {parent['run_id']}, {digits_epochs} epochs) -> 50% channels "
            f"pruned + {finetune_epochs} epochs of fine-tune at lr {FINETUNE_LR:g} "
            f"(run {pruned.run_id})",
            pruned,
            {"FLOPs per sample": "<= 0.35x", "test accuracy": "within 1 pt"},
        )
        gru = train("mnist1d-gru", "mnist1d", gru_epochs)
        quantized = compress_run(gru["run_id"], CompressOptions(int8=True))
        show(
            f"mnist1d-gru (run {gru['run_id']}, {gru_epochs} epochs) -> int8 ONNX vs float32 ONNX",
            quantized,
            {
                "size on disk": "<= 0.35x",
                "test accuracy": "within 1 pt",
                "CPU latency, batch 1": "<= 1.00x",
            },
        )
        print(f"\nint8 weights: {quantized.int8['dynamic'] + quantized.int8['weight_only']}")
        print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
