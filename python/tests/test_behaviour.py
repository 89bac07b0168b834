"""Interruption, bad input, explain."""

import _thread
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import backprop
from backprop import MLPClassifier, MLPRegressor

from conftest import mixed_frame


class _InterruptAt:
    """A stdout that presses Ctrl-C (as the signal would) once training prints epoch
    `epoch`'s line: the interrupt lands mid-training whatever the machine's speed."""

    def __init__(self, epoch):
        self.mark, self.lines = f"Epoch {epoch}/", []

    def write(self, text):
        self.lines.append(text)
        if text.startswith(self.mark):
            _thread.interrupt_main()

    def flush(self):
        pass


def test_ctrl_c_keeps_the_best_weights_so_far(california, monkeypatch):
    X = california.drop(columns="MedHouseVal").to_numpy()
    y = california["MedHouseVal"].to_numpy()
    est = MLPRegressor(epochs=1000, hidden=(64, 32), threads=1, verbose=1)
    out = _InterruptAt(epoch=3)
    monkeypatch.setattr(sys, "stdout", out)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    monkeypatch.undo()
    assert time.perf_counter() - started < 60
    # Stopped at the end of the epoch whose line pressed Ctrl-C, however fast it ran.
    assert est.n_iter_ == 3
    assert np.isfinite(est.history_["valid_loss"].to_numpy()).all()
    assert est.score(X, y) > 0.5
    assert np.isfinite(est.predict(X[:5])).all()


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(hidden=(0,)), "0 units"),
        (dict(lr=-1.0), "lr"),
        (dict(epochs=0), "epochs"),
        (dict(threads=0), "threads"),
        (dict(loss="cross_entropy"), "loss"),
        (dict(activation="nope"), "activation"),
        (dict(batch_size="many"), "batch"),
        (dict(valid_fraction=1.5), "fraction"),
        (dict(class_weight="balanced"), "weighs classes"),
    ],
)
def test_bad_settings_are_value_errors(params, message):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=message):
        MLPRegressor(**{"hidden": (4,), "epochs": 1, **params}).fit(X, X[:, 0])


def test_bad_types_are_type_errors():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(TypeError):
        MLPRegressor(epochs=1, hidden=(4,), lr=object()).fit(X, X[:, 0])
    with pytest.raises(TypeError):
        MLPRegressor(epochs=1, hidden=(4,), patience=True).fit(X, X[:, 0])


def test_bad_data_is_refused_clearly():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    est = MLPRegressor(hidden=(4,), epochs=1)
    with pytest.raises(NotFittedError):
        est.predict(X)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(bad, y)
    with pytest.raises(ValueError):
        est.fit(X, y[:10])
    with pytest.raises(ValueError):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError):
        est.fit(np.array([["a", "b"]] * 50), y)
    est.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="infinity"):
        est.predict(bad)
    with pytest.raises(ValueError):
        MLPClassifier(hidden=(4,), epochs=1).fit(X, y)  # continuous labels
    with pytest.raises(ValueError, match="one class"):
        MLPClassifier(hidden=(4,), epochs=1).fit(X, np.zeros(50))
    df = mixed_frame(50)
    fitted = MLPRegressor(hidden=(4,), epochs=1).fit(df.drop(columns="y"), df["y"])
    with pytest.raises(ValueError):
        fitted.predict(df.drop(columns=["y", "colour"]))
    with pytest.raises(FileNotFoundError):
        backprop.load("/nonexistent/run")


def test_unseen_categories_and_missing_cells_predict():
    df = mixed_frame(200)
    X, y = df.drop(columns="y"), df["y"]
    est = MLPRegressor(hidden=(16,), epochs=30).fit(X, y)
    new = X.head(3).copy()
    new["colour"] = ["purple", None, "red"]
    new.loc[new.index[0], "a"] = np.nan
    assert np.isfinite(est.predict(new)).all()
    assert est.score(X, y) > 0.8
    assert list(est.feature_names_in_) == ["a", "b", "colour", "size"]


def test_explain_numbers():
    d = backprop.explain.descent(grid=21, steps=10)
    assert d["grid"].shape == (21, 21) and len(d["ws"]) == 21
    assert all(p["params"].shape[1] in (1, 2) for p in d["paths"])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    r = backprop.explain.lr(X, X @ [1.0, 2.0, 3.0], MLPRegressor(hidden=(16,)), steps=50)
    assert r["lrs"].shape == (50,) and r["losses"].shape == (50,)
    assert 0 < r["suggestion"] < 1


def test_landscape_of_a_fitted_model(california, tmp_path):
    data = tmp_path / "cal.csv"
    small = california.sample(2000, random_state=0)
    small.to_csv(data, index=False)
    est = MLPRegressor(hidden=(8,), epochs=3).fit(small.drop(columns="MedHouseVal"), small["MedHouseVal"])
    est.save(tmp_path / "run")
    out = backprop.explain.landscape(tmp_path / "run", rows=200, points=5, grid=3)
    assert out["curves"].shape == (3, 5) and out["plane"].shape == (3, 3)
    assert np.isfinite(out["center"])


def test_balanced_class_weights_find_the_rare_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + 0.8 * rng.normal(size=1000) > 2.0, "yes", "no")
    Xt, yt = X[800:], y[800:]
    recall = {}
    for weight in (None, "balanced"):
        est = MLPClassifier(epochs=20, class_weight=weight).fit(X[:800], y[:800])
        recall[weight] = float(np.mean(est.predict(Xt[yt == "yes"]) == "yes"))
    assert recall["balanced"] >= 0.5 and recall["balanced"] > recall[None] + 0.3, recall
    with pytest.raises(ValueError, match="only None or 'balanced'"):
        MLPClassifier(epochs=1, class_weight={"yes": 10}).fit(X, y)
