"""Serving under a bounded load on loopback: `studio serve` (onnxruntime) side by side with a
minimal hand-written FastAPI + PyTorch handler of the same model, and the cold start of
`studio serve` to its first answer.

Load: CLIENTS concurrent clients (threads, one keep-alive connection each) post REQUESTS raw
test samples at batch 1; the two servers are measured in alternating rounds so that a busy
machine slows both alike. Reported: requests/s, p50 / p95 / p99 latency, errors, and the ratios.

Run: .venv/bin/python bench/bench_serve.py [--requests 4000] [--clients 8] [--template digits-cnn]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
ROUNDS = 2  # alternating rounds per server

# the baseline: what a person writes by hand to serve the same model with PyTorch
BASELINE = textwrap.dedent(
    """
    import json, sys
    import torch
    from fastapi import FastAPI
    from safetensors.torch import load_file
    from core.builder import build_model
    from core.serve.server import facts_of

    folder = sys.argv[1]
    contract = json.load(open(f"{folder}/contract.json"))
    model = build_model(json.load(open(f"{folder}/spec.json")), facts_of(contract))
    model.load_state_dict(load_file(f"{folder}/model.safetensors"))
    model.eval()
    mean = torch.tensor(contract["input"]["mean"]).view(-1, 1, 1)
    std = torch.tensor(contract["input"]["std"]).view(-1, 1, 1)
    scale = contract["input"]["raw_max"]
    names = contract["class_names"]
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict):
        x = (torch.tensor(body["inputs"], dtype=torch.float32) / scale - mean) / std
        with torch.inference_mode():
            p = torch.softmax(model(x), dim=-1)
        top = torch.topk(p, 3)
        return {"predictions": [
            {"label": names[int(i[0])], "index": int(i[0]),
             "probabilities": {names[int(j)]: float(v) for v, j in zip(vs, i)}}
            for vs, i in zip(top.values, top.indices)
        ]}

    if __name__ == "__main__":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def wait_answering(port: int, body: bytes, process: subprocess.Popen, timeout_s: float) -> float:
    """Seconds until the server answers /predict with 200 (from now)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if post(connection, body) == 200:
                return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"the server on port {port} did not answer within {timeout_s:.0f} s")


def load(port: int, bodies: list[bytes], *, requests: int, clients: int) -> dict:
    """`requests` posts from `clients` threads; latencies in ms, errors counted."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    per_client = requests // clients

    def client(seed: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        for i in range(per_client):
            body = bodies[(seed * per_client + i) % len(bodies)]
            start = time.perf_counter()
            try:
                ok = post(connection, body) == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append((time.perf_counter() - start) * 1000)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors[0], "seconds": elapsed}


def summary(rounds: list[dict]) -> dict:
    latencies = sorted(x for r in rounds for x in r["latencies"])
    count = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(count - 1, int(q * count))]

    return {
        "rps": count / sum(r["seconds"] for r in rounds),
        "p50": statistics.median(latencies),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": sum(r["errors"] for r in rounds),
        "count": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per server, all rounds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--template", default="digits-cnn")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.environ["STUDIO_HOME"] = str(home)
    os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{home / 'studio.db'}"
    os.environ.pop("STUDIO_API_KEY", None)
    sys.path.insert(0, str(CHECKOUT))
    from core import runs
    from core.data import load_dataset
    from core.serve.contract import raw_sample
    from core.serve.server import prepare_run, serving_folder
    from core.templates import get_template

    template = get_template(args.template)
    print(f"training {args.template} on {template.dataset} for one epoch ...", file=sys.stderr)
    config = {"seed": 0, "epochs": 1, "device": "cpu"}
    run_id = runs.train_run_foreground(spec=template.spec, dataset=template.dataset, config=config)[
        "run_id"
    ]
    dataset = load_dataset(template.dataset)
    bodies = [
        json.dumps({"inputs": [raw_sample(dataset, "test", i)]}).encode()
        for i in range(min(200, len(dataset.test)))
    ]
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}

    def studio_serve(port: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "core.cli", "serve", str(run_id), "--port", str(port)]
        return subprocess.Popen(command, cwd=CHECKOUT, env=env, stderr=subprocess.DEVNULL)

    # cold start: the first `studio serve` of a run exports it (ONNX + parity check) first
    shutil.rmtree(serving_folder(run_id), ignore_errors=True)
    port = free_port()
    process = studio_serve(port)
    cold_export = wait_answering(port, bodies[0], process, 300)
    process.terminate()
    process.wait()
    port = free_port()
    process = studio_serve(port)
    cold = wait_answering(port, bodies[0], process, 300)  # the serving folder is ready now
    folder = prepare_run(run_id)

    script = home / "baseline.py"
    script.write_text(BASELINE)
    baseline_port = free_port()
    baseline = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(baseline_port)], cwd=home, env=env
    )
    wait_answering(baseline_port, bodies[0], baseline, 120)

    per_round = args.requests // ROUNDS
    results: dict[str, list[dict]] = {"studio serve (onnx)": [], "FastAPI + torch (baseline)": []}
    try:
        for target in (port, baseline_port):  # warm-up: first requests pay for lazy setup
            load(target, bodies, requests=args.clients * 25, clients=args.clients)
        for _ in range(ROUNDS):
            results["studio serve (onnx)"].append(
                load(port, bodies, requests=per_round, clients=args.clients)
            )
            results["FastAPI + torch (baseline)"].append(
                load(baseline_port, bodies, requests=per_round, clients=args.clients)
            )
    finally:
        for server in (process, baseline):
            server.terminate()
            server.wait()

    rows = {name: summary(rounds) for name, rounds in results.items()}
    print(
        f"\n{args.template} on {template.dataset}: {args.clients} concurrent clients, batch 1, "
        f"{rows['studio serve (onnx)']['count']} requests per server in {ROUNDS} alternating "
        f"rounds, loopback, {os.cpu_count()} CPUs"
    )
    print(f"{'server':<28}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, row in rows.items():
        print(
            f"{name:<28}{row['rps']:>9.0f}{row['p50']:>9.2f}{row['p95']:>9.2f}"
            f"{row['p99']:>9.2f}{row['errors']:>8}"
        )
    studio, base = rows["studio serve (onnx)"], rows["FastAPI + torch (baseline)"]
    print(
        f"studio / baseline: throughput {studio['rps'] / base['rps']:.2f}x, "
        f"p95 {studio['p95'] / base['p95']:.2f}x"
    )
    print(
        f"cold start of `studio serve` to the first answer: {cold:.1f} s "
        f"({cold_export:.1f} s the first time, exporting to ONNX included)"
    )
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
