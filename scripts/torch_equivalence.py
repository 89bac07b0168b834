#!/usr/bin/env python3
"""Load a `backprop` model into an equivalent `torch.nn.Sequential` and check that it
gives the same predictions as `backprop predict`.

Usage (run by hand, or in CI when Python with torch is installed):

    cargo build --release
    ./target/release/backprop train --out runs/check --epochs 5
    python3 scripts/torch_equivalence.py runs/check data/california_housing/california_housing.csv

It needs torch and numpy (pip install torch numpy). The preprocessing (median
imputation, scaling, one-hot encoding) is re-implemented here from `model.json`, so the
check covers the saved scaling as well as the weights.
"""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": lambda: nn.ELU(1.0),
    "gelu": nn.GELU,
    "softmax": lambda: nn.Softmax(dim=1),
}


def read_safetensors(path):
    """The tensors of a safetensors file (8-byte header length, JSON header, data)."""
    raw = Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype="<f4").reshape(info["shape"]).copy())
    return out


def load_sequential(model_dir):
    """The documented snippet: model.json + model.safetensors -> nn.Sequential."""
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    tensors = read_safetensors(Path(model_dir) / "model.safetensors")
    modules = []
    for i, layer in enumerate(meta["layers"]):
        linear = nn.Linear(layer["inputs"], layer["outputs"])
        linear.weight.data = tensors[f"layers.{i}.weight"]
        linear.bias.data = tensors[f"layers.{i}.bias"]
        modules += [linear, ACTIVATIONS[layer["activation"]]()]
    return nn.Sequential(*modules).eval(), meta


def norm_ppf(p):
    # Inverse of the standard normal CDF via torch's erfinv (double precision).
    return math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * p - 1.0, dtype=torch.float64)).item()


def scale(value, scaler):
    kind = scaler["kind"]
    if kind == "standard":
        return (value - scaler["mean"]) / scaler["std"]
    if kind == "minmax":
        return (value - scaler["min"]) / scaler["range"]
    if kind == "none":
        return value
    refs = np.asarray(scaler["references"])
    lo, hi = refs[0], refs[-1]
    if hi - lo < 1e-12:
        return 0.0
    levels = np.linspace(0.0, 1.0, len(refs))
    up = np.interp(value, refs, levels)
    down = 1.0 - np.interp(-value, -refs[::-1], levels)
    level = min(max(0.5 * (up + down), 1e-7), 1 - 1e-7)
    if value <= lo:
        level = 1e-7
    elif value >= hi:
        level = 1 - 1e-7
    return norm_ppf(level)


def features(rows, header, prep):
    out = []
    for row in rows:
        cells = dict(zip(header, row))
        x = []
        for f in prep["features"]:
            text = cells[f["name"]].strip()
            if f["kind"] == "numeric":
                v = f["median"] if text in ("", "NA", "N/A", "null", "NULL") else float(text)
                x.append(scale(v, f["scaler"]))
            else:
                text = "missing" if text in ("", "NA", "N/A", "null", "NULL") else text
                x.extend(1.0 if c == text else 0.0 for c in f["categories"])
        out.append(x)
    return torch.tensor(out, dtype=torch.float32)


def main():
    model_dir, data = sys.argv[1], sys.argv[2]
    binary = sys.argv[3] if len(sys.argv) > 3 else "target/release/backprop"
    net, meta = load_sequential(model_dir)
    with open(data, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    with torch.no_grad():
        out = net(features(rows, header, meta["preprocessor"])).double()
    target = meta["preprocessor"]["target"]
    if target["kind"] == "regression":
        ours = out[:, 0] * target["std"] + target["mean"]
        if target["transform"] == "log":
            ours = ours.exp()
        ours = ours.numpy()[:, None]
    else:
        ours = torch.softmax(out, dim=1).numpy()

    pred = subprocess.run([binary, "predict", "--model", model_dir, "--data", data], check=True, capture_output=True, text=True).stdout
    lines = list(csv.reader(pred.splitlines()))
    k = ours.shape[1]
    theirs = np.array([[float(v) for v in r[-k:]] for r in lines[1:]])
    diff = np.abs(ours - theirs).max()
    scale_ = max(1.0, np.abs(theirs).max())
    print(f"{len(theirs)} rows, max |torch - backprop| = {diff:.3g} (relative {diff / scale_:.3g})")
    # f32 networks evaluated with different summation orders agree to ~1e-6 relative.
    if diff / scale_ > 1e-4:
        sys.exit(f"predictions differ by {diff}")
    print("torch.nn.Sequential reproduces backprop's predictions")


if __name__ == "__main__":
    main()
