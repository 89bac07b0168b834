#!/usr/bin/env python3
"""PyTorch against `backprop` on the `--example mnist-cnn` network, side by side.

The network: conv 1->32 3x3 pad 1, ReLU, maxpool 2, conv 32->64 3x3 pad 1, ReLU,
maxpool 2, flatten, dense 3136->128, ReLU, dense 128->10, softmax cross-entropy. Both
train 1 epoch on the 60,000 MNIST training images (pixels scaled to [0, 1]) with SGD,
momentum 0.9, lr 0.05, batch 128, shuffled, no weight decay, on 2 threads, with He
(Kaiming) initialisation on both sides. Printed: each side's training seconds (the
training loop only: PyTorch's loop; `backprop`'s `train_seconds` from --metrics-json),
test accuracy, the ratio PyTorch / backprop (above 1: backprop is faster), GFLOP/s
of each against the machine's ~180 GFLOP/s peak, and each process's peak resident set
(each side runs in a process of its own: `os.wait4` gives that child's own peak).

    cargo build --release -p backprop-cli
    python3 bench/cnn.py [--threads 2] [--epochs 1]
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "data" / "mnist"
BIN = ROOT / "target" / "release" / "backprop"
# `settings::examples::MNIST_CNN`, the network PyTorch's side builds.
MNIST_CNN = ("conv 32 3x3 pad 1, relu, maxpool 2, conv 64 3x3 pad 1, relu, maxpool 2, "
             "flatten, dense 128 relu, dense 10")

# Multiply-adds per image of one training step (forward, weight gradient, input
# gradient: 3 products per layer, except the first layer's input gradient), x2 for
# FLOPs.
FORWARD_MACS = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 288 + 3136 * 128 + 128 * 10
FIRST_LAYER_MACS = 28 * 28 * 32 * 9
STEP_FLOPS = 2 * (3 * FORWARD_MACS - FIRST_LAYER_MACS)
PEAK = 180.0


def idx(name):
    with gzip.open(MNIST / name) as f:
        data = f.read()
    if name.endswith("labels-idx1-ubyte.gz"):
        return np.frombuffer(data, np.uint8, offset=8)
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 1, 28, 28)


def torch_run(threads, epochs):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.tensor(idx("train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    y = torch.tensor(idx("train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xt = torch.tensor(idx("t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    yt = torch.tensor(idx("t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[b]), y[b]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    return seconds, acc


def backprop_run(threads, epochs):
    with tempfile.TemporaryDirectory() as d:
        metrics = Path(d) / "metrics.json"
        cmd = [
            str(BIN), "train", "--example", "mnist-cnn", "--epochs", str(epochs),
            # The network alone, as PyTorch runs it: without the example's `shift 2`.
            "--layers", MNIST_CNN,
            "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9",
            "--weight-decay", "0", "--schedule", "constant", "--batch-size", "128",
            "--init", "he-uniform", "--threads", str(threads), "--no-baseline", "--quiet",
            "--out", str(Path(d) / "run"), "--metrics-json", str(metrics),
        ]
        rss = waited(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL))[1]
        m = json.loads(metrics.read_text())
        return m["train_seconds"], m["test"]["accuracy"], rss


def waited(child):
    """Waits for `child`; its stdout (if piped) and its own peak resident set in MiB."""
    out = child.stdout.read() if child.stdout else None
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{child.args[:3]}... failed with exit code {child.returncode}")
    return out, usage.ru_maxrss / 1024


def pytorch_process(threads, epochs):
    """`torch_run` in a process of its own, for its peak resident set."""
    cmd = [sys.executable, __file__, "--side", "pytorch", "--threads", str(threads),
           "--epochs", str(epochs)]
    out, rss = waited(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE))
    seconds, acc = json.loads(out)
    return seconds, acc, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--side", choices=["pytorch"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side == "pytorch":
        print(json.dumps(torch_run(a.threads, a.epochs)))
        return
    flops = STEP_FLOPS * 60000 * a.epochs / 1e9
    rows = []
    for name, run in [("pytorch", pytorch_process), ("backprop", backprop_run)]:
        s, acc, rss = run(a.threads, a.epochs)
        rows.append((name, s, acc, rss))
        print(f"{name:9s} {s:7.1f} s  test accuracy {acc:.4f}  "
              f"{flops / s:6.1f} GFLOP/s ({100 * flops / s / PEAK:.0f}% of {PEAK:.0f})  "
              f"peak RSS {rss:6.0f} MiB")
    print(f"ratio pytorch / backprop: {rows[0][1] / rows[1][1]:.2f}x time, "
          f"{rows[1][3] / rows[0][3]:.2f}x memory (time above 1: backprop is faster)")


if __name__ == "__main__":
    main()
