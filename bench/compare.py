#!/usr/bin/env python3
"""Side-by-side training speed: backprop (Rust) against PyTorch on the CPU.

Runs each workload of issue 6 in both, alternating, several repetitions, each run in
its own process with the same thread count, and prints the median training-loop
seconds, the ratio (PyTorch / backprop) of the medians, the median (and range) of each
repetition's own ratio, and the final training loss and test metric of both. The
backprop side is `crates/backprop/examples/workloads.rs` (the library's own
`Trainer::fit`); the PyTorch side is the ordinary PyTorch loop below. Both use the same
rows: the California split is the same SplitMix64 Fisher-Yates shuffle in both, and
standardisation uses the training rows' mean and population standard deviation.
Initialisation is PyTorch's nn.Linear default in both (backprop's `Init::Torch`), with
each side's own random draws.

    python3 bench/compare.py                      # all workloads, 5 repetitions
    python3 bench/compare.py --reps 3 --workloads california-mini mnist:2
    python3 bench/compare.py --json results.json  # also write every run
    python3 bench/compare.py --baseline OLD/workloads  # also time an older build

Workloads are `name`, `name:threads` or `name:threads:lr`; the default list is the
issue's: the three California ones on 1 thread and MNIST on 2 and on 1 thread, except
that online SGD runs at lr 1e-4: at the issue's 1e-3 (with momentum 0.9, one row per
update) it diverges on this data in most seeds in both libraries (BENCHMARKS.md).
"""

import argparse
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

# name: (hidden, batch (None = full), epochs, lr)
WORKLOADS = {
    "california-mini": ([64, 64], 32, 10, 0.001),
    "california-online": ([64, 64], 1, 1, 0.001),
    "california-full": ([64, 64], None, 500, 0.001),
    "mnist": ([512, 256], 128, 1, 0.05),
}
DEFAULT_RUNS = ["california-mini:1", "california-online:1:0.0001", "california-full:1", "mnist:2", "mnist:1"]
TARGETS = {
    "california-mini:1": 20.0,
    "california-online:1": 50.0,
    "california-online:1:0.0001": 50.0,
    "california-full:1": 3.0,
    "mnist:2": 1.25,
    "mnist:1": 1.0,
}
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def california(seed):
    """The same split and standardisation as workloads.rs."""
    path = DATA / "california_housing" / "california_housing.csv"
    values = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    n = len(values)
    order = list(range(n))
    state = seed
    for i in range(n - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    n_train = n * 4 // 5
    train, test = values[order[:n_train]], values[order[n_train:]]
    mean, std = train.mean(axis=0), train.std(axis=0)
    train = ((train - mean) / std).astype(np.float32)
    test = ((test - mean) / std).astype(np.float32)
    return (train[:, :-1], train[:, -1:]), (test[:, :-1], test[:, -1:])


def read_idx(path, dims):
    with gzip.open(path, "rb") as f:
        data = f.read()
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist():
    d = DATA / "mnist"

    def load(images, labels):
        x = read_idx(d / images, 3).reshape(-1, 784).astype(np.float32) / np.float32(255.0)
        return x, read_idx(d / labels, 1).astype(np.int64)

    return load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"), load(
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
    )


def torch_worker(workload, threads, seed, lr_override=None):
    """One PyTorch training run; prints the same JSON fields as workloads.rs."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    hidden, batch, epochs, lr = WORKLOADS[workload]
    lr = lr_override or lr
    is_mnist = workload == "mnist"
    (xtr, ytr), (xte, yte) = mnist() if is_mnist else california(seed)
    xtr, ytr, xte, yte = (torch.from_numpy(np.ascontiguousarray(a)) for a in (xtr, ytr, xte, yte))
    torch.manual_seed(seed)
    sizes = [xtr.shape[1]] + hidden + [10 if is_mnist else 1]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss() if is_mnist else nn.MSELoss()
    n = len(xtr)
    batch = batch or n
    gen = torch.Generator().manual_seed(seed)

    started = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen) if batch < n else None
        total = 0.0
        for start in range(0, n, batch):
            if perm is None:
                xb, yb = xtr, ytr
            else:
                idx = perm[start : start + batch]
                xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit(f"torch: training diverged at epoch {epoch + 1}, step {start // batch + 1}")
            total += value * len(xb)
    seconds = time.perf_counter() - started

    with torch.no_grad():
        out = model(xte)
        if is_mnist:
            metric, value = "accuracy", (out.argmax(dim=1) == yte).double().mean().item()
        else:
            metric, value = "mse", ((out - yte).double() ** 2).mean().item()
    steps = epochs * math.ceil(n / batch)
    print(
        json.dumps(
            {
                "impl": "torch",
                "workload": workload,
                "threads": threads,
                "seed": seed,
                "epochs": epochs,
                "steps": steps,
                "lr": lr,
                "seconds": seconds,
                "train_loss": total / n,
                "test_metric": metric,
                "test_value": value,
            }
        )
    )


def parse_spec(spec):
    """`name[:threads[:lr]]` -> (name, threads as int, lr as text; "0" = the workload's)."""
    parts = spec.split(":")
    return parts[0], int(parts[1]) if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else "0"


def run_json(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def mnist_step_flops(batch=128, sizes=(784, 512, 256, 10)):
    """Multiply-add FLOPs (2 per multiply-add) of one training step's matrix products:
    forward x W^T, backward dW = dz^T x for every layer and dx = dz W for all but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * batch * i * o for i, o in pairs)
    dw = fwd
    dx = sum(2 * batch * i * o for i, o in pairs[1:])
    return fwd + dw + dx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="seed of the first repetition (rep i uses seed+i)")
    ap.add_argument("--workloads", nargs="*", default=DEFAULT_RUNS)
    ap.add_argument("--json", help="write every run here")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--baseline", help="a workloads binary built from an older library, timed alongside")
    ap.add_argument("--torch-worker", nargs=4, metavar=("WORKLOAD", "THREADS", "SEED", "LR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        w, t, s, lr = args.torch_worker
        torch_worker(w, int(t), int(s), float(lr) or None)
        return

    target_dir = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--example", "workloads"], cwd=ROOT, check=True)
    harness = Path(target_dir) / "release" / "examples" / "workloads"

    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.reps} repetitions, alternating", flush=True)
    all_runs, rows = [], []
    for spec in args.workloads:
        name, threads, lr = parse_spec(spec)
        results = {"backprop": [], "torch": [], "before": []}
        for rep in range(args.reps):
            seed = args.seed + rep
            rust = [str(harness), name, "--threads", str(threads), "--seed", str(seed), "--data", str(DATA)]
            rust += ["--lr", lr] if float(lr) else []
            py = [sys.executable, __file__, "--torch-worker", name, str(threads), str(seed), lr]
            # Alternate which side goes first, so drift in machine load hits both.
            order = [("backprop", rust), ("torch", py)] if rep % 2 == 0 else [("torch", py), ("backprop", rust)]
            if args.baseline:
                order.insert(1, ("before", [args.baseline] + rust[1:]))
            for impl, cmd in order:
                r = run_json(cmd)
                r.setdefault("impl", impl)
                r.update(spec=spec, rep=rep)
                results[impl].append(r)
                all_runs.append(r)
                print(f"  {spec:22} rep {rep} {impl:8} " + (r.get("error") or f"{r['seconds']:.3f} s"), flush=True)
        rows.append((spec, results))

    print()
    before = " before s |" if args.baseline else ""
    print(f"| workload | threads | backprop s | PyTorch s | speed-up | per-rep speed-up | target | backprop loss / test | PyTorch loss / test |{before}")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if args.baseline else ""))
    for spec, results in rows:
        name, threads, lr = parse_spec(spec)
        label = name + (f" (lr {lr})" if float(lr) else "")
        med, fig = {}, {}
        for impl, rs in results.items():
            ok = [r for r in rs if "seconds" in r]
            med[impl] = statistics.median(r["seconds"] for r in ok) if ok else float("nan")
            fig[impl] = (
                f"{statistics.median(r['train_loss'] for r in ok):.4f} / "
                f"{ok[0]['test_metric']} {statistics.median(r['test_value'] for r in ok):.4f}"
                if ok
                else "-"
            )
            failed = len(rs) - len(ok)
            if failed:
                fig[impl] += f" ({failed} of {len(rs)} diverged)"
        ratio = med["torch"] / med["backprop"]
        # Each repetition's two runs follow each other, so their ratio is less affected
        # by the machine's load drifting over the whole comparison than the medians are.
        per_rep = sorted(
            t["seconds"] / b["seconds"]
            for b, t in zip(results["backprop"], results["torch"])
            if "seconds" in b and "seconds" in t
        )
        paired = (
            f"{statistics.median(per_rep):.1f}x ({per_rep[0]:.1f}-{per_rep[-1]:.1f})" if per_rep else "-"
        )
        print(
            f"| {label} | {threads} | {med['backprop']:.3f} | {med['torch']:.3f} | {ratio:.1f}x | {paired} "
            f"| {TARGETS.get(spec, float('nan'))}x | {fig['backprop']} | {fig['torch']} |"
            + (f" {med['before']:.3f} |" if args.baseline else "")
        )
        if name == "mnist":
            ok = [r for r in results["backprop"] if "seconds" in r]
            if ok:
                flops = mnist_step_flops() * ok[0]["steps"]
                print(f"|  (mnist {threads} thread(s): backprop {flops / med['backprop'] / 1e9:.1f} GFLOP/s, "
                      f"PyTorch {flops / med['torch'] / 1e9:.1f} GFLOP/s of matrix-product work) |")
    if args.json:
        Path(args.json).write_text(json.dumps(all_runs, indent=1))


if __name__ == "__main__":
    main()
