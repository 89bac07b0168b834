"""The same model three ways, bit for bit: the Python estimator, backprop.load of a run
folder, and `backprop predict`; and the preprocessing of the command line."""

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import backprop
from backprop import MLPClassifier, MLPRegressor

from conftest import REPO, mixed_frame, write_csv

SMALL = dict(hidden=(16, 8), epochs=6)
SMALL_FLAGS = ["--hidden", "16,8", "--epochs", "6"]


def cli_predictions(cli, model_dir, csv, column):
    out = cli("predict", "--model", model_dir, "--data", csv, "--out", "-").stdout
    frame = pd.read_csv(io.StringIO(out), dtype=str, keep_default_na=False)
    return frame[column].to_numpy(), frame


def as_f32(text):
    return np.array([np.float32(t) for t in text])


def test_python_fit_is_the_command_lines_run(cli, tmp_path):
    """fit on a DataFrame with text and missing cells writes the model `backprop train`
    writes from the same rows as CSV (no test rows: --test-fraction 0)."""
    df = mixed_frame()
    csv = tmp_path / "mixed.csv"
    write_csv(df, csv)
    cli("train", "--data", csv, "--target", "y", "--task", "regress", "--test-fraction", "0",
        "--no-baseline", "--quiet", "--out", tmp_path / "cli", *SMALL_FLAGS)
    est = MLPRegressor(**SMALL).fit(df.drop(columns="y"), df["y"])
    est.save(tmp_path / "py")
    py_model = (tmp_path / "py" / "model.safetensors").read_bytes()
    assert py_model == (tmp_path / "cli" / "model.safetensors").read_bytes()
    # Every number of the history but the seconds each epoch took.
    py_hist = pd.read_csv(tmp_path / "py" / "history.csv", dtype=str).drop(columns="seconds")
    cli_hist = pd.read_csv(tmp_path / "cli" / "history.csv", dtype=str).drop(columns="seconds")
    assert py_hist.equals(cli_hist)
    py_json = json.loads((tmp_path / "py" / "model.json").read_text())
    cli_json = json.loads((tmp_path / "cli" / "model.json").read_text())
    assert py_json["preprocessor"] == cli_json["preprocessor"]
    assert py_json["training"] == cli_json["training"]
    for name in ("metrics.json", "report.html", "loss_curve.svg"):
        assert (tmp_path / "py" / name).is_file(), name


def test_cli_model_loads_and_predicts_bit_for_bit(cli, tmp_path):
    df = mixed_frame(seed=3)
    csv = tmp_path / "mixed.csv"
    write_csv(df, csv)
    cli("train", "--data", csv, "--target", "y", "--quiet", "--out", tmp_path / "run", *SMALL_FLAGS)
    text, _ = cli_predictions(cli, tmp_path / "run", csv, "y_predicted")
    model = backprop.load(tmp_path / "run")
    assert isinstance(model, MLPRegressor)
    assert list(model.feature_names_in_) == ["a", "b", "colour", "size"]
    ours = model.predict(df.drop(columns="y"))
    assert np.array_equal(ours.astype(np.float32), as_f32(text))
    assert len(model.history_) == 6
    # The run's settings (settings.toml) are the loaded estimator's keywords: a clone
    # trains the command line's model again.
    params = model.get_params()
    assert params["hidden"] == (16, 8) and params["epochs"] == 6
    assert params["lr"] == MLPRegressor().get_params()["lr"]


def test_a_clone_of_a_loaded_run_trains_the_same_model(cli, tmp_path):
    df = mixed_frame(seed=5)
    csv = tmp_path / "mixed.csv"
    write_csv(df, csv)
    cli("train", "--data", csv, "--target", "y", "--task", "regress", "--test-fraction", "0",
        "--no-baseline", "--quiet", "--out", tmp_path / "cli", "--lr", "0.01",
        "--weight-decay", "0.3", "--scale", "standard", *SMALL_FLAGS)
    loaded = backprop.load(tmp_path / "cli")
    p = loaded.get_params()
    assert (p["lr"], p["weight_decay"], p["scale"]) == (0.01, 0.3, "standard")
    again = clone(loaded).fit(df.drop(columns="y"), df["y"])
    again.save(tmp_path / "py")
    assert (tmp_path / "py" / "model.safetensors").read_bytes() == (
        tmp_path / "cli" / "model.safetensors"
    ).read_bytes()
    # Python's run folder records the same settings, so it loads with them too.
    assert backprop.load(tmp_path / "py").get_params() == p


def test_python_model_predicts_the_same_in_the_cli_after_pickling(cli, tmp_path):
    df = mixed_frame(seed=4)
    X, y = df.drop(columns="y"), df["y"]
    est = MLPRegressor(**SMALL).fit(X, y)
    ours = est.predict(X)
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict(X), ours)
    again.save(tmp_path / "run")
    csv = tmp_path / "x.csv"
    write_csv(X, csv)
    text, _ = cli_predictions(cli, tmp_path / "run", csv, "y_predicted")
    assert np.array_equal(ours.astype(np.float32), as_f32(text))
    loaded = backprop.load(tmp_path / "run")
    assert np.array_equal(loaded.predict(X), ours)


def test_classifier_round_trip(cli, tmp_path):
    iris = pd.read_csv(REPO / "data" / "iris" / "iris.csv")
    target = iris.columns[-1]
    X, y = iris.drop(columns=target), iris[target]
    est = MLPClassifier(**SMALL).fit(X, y)
    proba = est.predict_proba(X)
    est.save(tmp_path / "run")
    csv = tmp_path / "x.csv"
    write_csv(X, csv)
    labels, frame = cli_predictions(cli, tmp_path / "run", csv, f"{target}_predicted")
    assert np.array_equal(est.predict(X).astype(str), labels.astype(str))
    for j, c in enumerate(est.classes_):
        assert np.array_equal(proba[:, j].astype(np.float32), as_f32(frame[f"p_{c}"]))
    loaded = backprop.load(tmp_path / "run")
    assert np.array_equal(loaded.predict_proba(X), proba)
    assert np.array_equal(pickle.loads(pickle.dumps(est)).predict(X), est.predict(X))


def test_numpy_input_with_missing_cells_names_columns_x0(cli, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5]
    X[::7, 1] = np.nan
    est = MLPRegressor(**SMALL).fit(X, y)
    est.save(tmp_path / "run")
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    csv = tmp_path / "x.csv"
    write_csv(frame, csv)
    text, _ = cli_predictions(cli, tmp_path / "run", csv, "y_predicted")
    assert np.array_equal(est.predict(X).astype(np.float32), as_f32(text))
