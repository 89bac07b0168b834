#!/usr/bin/env python3
"""Issue 20's speed check: ``backprop.MLPRegressor().fit`` (all defaults) on California
housing against scikit-learn's ``MLPRegressor(hidden_layer_sizes=(256, 128),
early_stopping=True)`` and, when torch is installed, an equivalent PyTorch loop (the
same 8-256-256-128-1 ReLU network, AdamW, MSE, batch 32, the same number of epochs as
ours), side by side in one run on one 80/20 split: test RMSE, fit seconds and ratios.

    python3 bench/python_speed.py                    # seed 0, every core
    python3 bench/python_speed.py --seed 1 --threads 2

scikit-learn's MLP gets standardised inputs and target (it diverges on the raw ones);
PyTorch the same standardised inputs. Ours gets the raw table: its own preprocessing
(quantile scaling, as `backprop train`) is part of what is timed. Needs numpy, pandas,
scikit-learn and the backprop package (scripts/test-python installs it into
target/python-venv); torch optional.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SkMLP
from sklearn.preprocessing import StandardScaler

import backprop

ROOT = Path(__file__).resolve().parent.parent


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def ours(X_tr, y_tr, X_te, y_te, threads):
    est = backprop.MLPRegressor(threads=threads)
    _, s = timed(lambda: est.fit(X_tr, y_tr))
    return rmse(est.predict(X_te), y_te), s, f"{est.n_iter_} epochs"


def sklearn_mlp(X_tr, y_tr, X_te, y_te, seed):
    xs, ys = StandardScaler().fit(X_tr), StandardScaler().fit(y_tr.reshape(-1, 1))
    est = SkMLP(hidden_layer_sizes=(256, 128), early_stopping=True, random_state=seed)
    _, s = timed(lambda: est.fit(xs.transform(X_tr), ys.transform(y_tr.reshape(-1, 1)).ravel()))
    pred = ys.inverse_transform(est.predict(xs.transform(X_te)).reshape(-1, 1)).ravel()
    return rmse(pred, y_te), s, f"{est.n_iter_} epochs"


def torch_loop(X_tr, y_tr, X_te, y_te, seed, epochs, threads):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    xs, ys = StandardScaler().fit(X_tr), StandardScaler().fit(y_tr.reshape(-1, 1))
    x = torch.tensor(xs.transform(X_tr), dtype=torch.float32)
    y = torch.tensor(ys.transform(y_tr.reshape(-1, 1)), dtype=torch.float32)
    net = nn.Sequential(
        nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1),
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def fit():
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 32):
                idx = perm[i : i + 32]
                opt.zero_grad()
                loss_fn(net(x[idx]), y[idx]).backward()
                opt.step()

    _, s = timed(fit)
    with torch.no_grad():
        pred = net(torch.tensor(xs.transform(X_te), dtype=torch.float32)).numpy()
    pred = ys.inverse_transform(pred).ravel()
    return rmse(pred, y_te), s, f"{epochs} epochs, batch 32"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="threads for ours and torch (default: all cores)")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each row as soon as it is measured
    df = pd.read_csv(ROOT / "data" / "california_housing" / "california_housing.csv")
    X = df.drop(columns="MedHouseVal").to_numpy()
    y = df["MedHouseVal"].to_numpy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=a.seed)
    print(f"California housing: {len(X_tr)} training rows, {len(X_te)} test rows (seed {a.seed}); "
          f"{os.cpu_count()} cores, threads {a.threads or 'all'}")
    rows = [("backprop MLPRegressor() defaults", *ours(X_tr, y_tr, X_te, y_te, a.threads))]
    epochs = backprop.MLPRegressor().epochs
    rows.append(("scikit-learn MLPRegressor(256,128, early_stopping)", *sklearn_mlp(X_tr, y_tr, X_te, y_te, a.seed)))
    try:
        import torch  # noqa: F401

        rows.append(("PyTorch loop (same network, AdamW, batch 32)",
                     *torch_loop(X_tr, y_tr, X_te, y_te, a.seed, epochs, a.threads)))
    except ImportError:
        print("(torch is not installed: no PyTorch row)")
    base = rows[0][2]
    print(f"\n{'model':52} {'test RMSE':>10} {'fit s':>9} {'x ours':>8}  notes")
    for name, r, s, note in rows:
        print(f"{name:52} {r:10.4f} {s:9.2f} {s / base:8.1f}  {note}")


if __name__ == "__main__":
    main()
