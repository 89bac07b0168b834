"""``backprop.load``: a fitted estimator from a run folder the command line (or
``save``) wrote."""

import csv
import json
import os

import numpy as np

from . import _core, _data
from ._estimators import MLPClassifier, MLPRegressor, _order, _read_folder


def _history(path):
    """history.csv of a run folder as records (numbers where they parse)."""
    file = os.path.join(path, "history.csv")
    if not os.path.isfile(file):
        return []
    with open(file, newline="") as f:
        rows = list(csv.DictReader(f))

    def value(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v if v != "" else None

    return [{k: value(v) for k, v in r.items()} for r in rows]


def _labels(classes):
    """Class names as the command line saved them; whole numbers become ints."""
    try:
        ints = [int(c) for c in classes]
        if [str(i) for i in ints] == list(classes):
            return np.array(ints)
    except ValueError:
        pass
    return np.array(classes, dtype=object)


def load(path):
    """Reads the model in a run folder (``backprop train --out DIR`` or ``save(DIR)``)
    and returns a fitted :class:`MLPRegressor` or :class:`MLPClassifier` that predicts
    exactly what ``backprop predict`` does. Its keywords are the ones the run was given
    (the folder's ``settings.toml``; the defaults for folders written without one), so
    ``clone(load(dir)).fit(X, y)`` trains with the run's settings; its input columns
    (``feature_names_in_``) are the model's."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such run folder")
    model = _core.load(path)
    classes = model.classes()
    est = MLPClassifier() if classes is not None else MLPRegressor()
    given = _core.given_keywords(path)
    if given is not None:
        est.set_params(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(given).items()}
        )
    names = model.feature_names()
    est._model = model
    est._names = names
    est._run_files = _read_folder(path)
    est.n_features_in_ = len(names)
    est.feature_names_in_ = np.array(names, dtype=object)
    est._set_history(_history(path))
    if classes is not None:
        labels = _labels(classes)
        order = np.argsort(labels, kind="stable")
        est.classes_ = labels[order]
        est._order = _order(classes, [classes[i] for i in order])
    return est
