"""scikit-learn estimators over ``backprop``'s Rust trainer.

Every keyword is a setting of ``backprop train`` with the same name (``-`` written
``_``) and default; values are those of its TOML settings file (``hidden=(64, 64)``,
``lr="auto"``, ``batch_size="full"``, ``loss="huber"``). ``_core.keywords()`` derives the
list from the Rust settings type and the tests check this signature against it.
"""

import json
import os
import shutil
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_y,
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from . import _core, _data

_FLOATS = (np.float64, np.float32)


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (tuple, list, np.ndarray)):
        return [_jsonable(x) for x in v]
    return v


class _Base(BaseEstimator):
    """Shared by the regressor and the classifier (see their docstrings)."""

    _classify = False

    def __init__(
        self,
        *,
        activation="relu",
        batch_size=None,
        class_weight=None,
        clip_norm=None,
        epochs=60,
        hidden=(256, 256, 128),
        init="auto",
        keep=None,
        layers=None,
        loss=None,
        lr=0.02,
        momentum=None,
        optimizer="adamw",
        patience=0,
        scale="select",
        schedule="one-cycle",
        seed=42,
        target_transform="none",
        threads=None,
        valid_fraction=0.1,
        weight_decay=None,
        verbose=0,
    ):
        self.activation = activation
        self.batch_size = batch_size
        self.class_weight = class_weight
        self.clip_norm = clip_norm
        self.epochs = epochs
        self.hidden = hidden
        self.init = init
        self.keep = keep
        self.layers = layers
        self.loss = loss
        self.lr = lr
        self.momentum = momentum
        self.optimizer = optimizer
        self.patience = patience
        self.scale = scale
        self.schedule = schedule
        self.seed = seed
        self.target_transform = target_transform
        self.threads = threads
        self.valid_fraction = valid_fraction
        self.weight_decay = weight_decay
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Missing cells are filled in as the command line does (training medians).
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags

    # -- parameters -------------------------------------------------------------------

    def _settings_json(self):
        params = self.get_params(deep=False)
        params.pop("verbose")
        if params["class_weight"] not in (None, "balanced"):
            raise ValueError(
                f"{type(self).__name__}: class_weight={params['class_weight']!r}: only "
                "None or 'balanced' (every class weighs the same in total) are supported"
            )
        for k, v in params.items():
            if isinstance(v, bool) or not isinstance(
                v, (type(None), str, int, float, tuple, list, np.integer, np.floating, np.ndarray)
            ):
                raise TypeError(f"{type(self).__name__}: {k}={v!r} is not a number, text or list")
        return json.dumps({k: _jsonable(v) for k, v in params.items()})

    # -- data -------------------------------------------------------------------------

    def _x_columns(self, X, reset):
        """Validates X (and records its width and names on fit); returns its columns."""
        if _data.is_dataframe(X):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required.")
            if X.shape[1] == 0:
                raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
            return _data.dataframe_columns(X), _data.column_names(X)
        X = validate_data(
            self, X, reset=reset, dtype=_FLOATS, ensure_all_finite="allow-nan", accept_sparse=False
        )
        return _data.array_columns(X), _data.column_names(X)

    def _fast_columns(self, X):
        """predict's shortcut for a plain float array of the right width: the checks
        validate_data makes that matter here, in a few microseconds."""
        if (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.dtype in _FLOATS
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and not hasattr(self, "feature_names_in_")
        ):
            if np.isinf(X).any():
                raise ValueError("Input X contains infinity or a value too large for dtype('float64').")
            return _data.array_columns(X)
        return None

    # -- fit / predict ----------------------------------------------------------------

    def _fit(self, X, y_name, y_column):
        columns, names = self._x_columns(X, reset=True)
        if len(columns[0]) < 2:
            raise ValueError(
                f"n_samples={len(columns[0])}: training needs at least 2 samples"
            )
        target = _data.target_name(y_name, names)
        settings = self._settings_json()
        model, stop = _core.fit(
            settings, columns, names, y_column, target, self._classify, bool(self.verbose), "data"
        )
        self._model = model
        self._names = names
        self._run_files = None
        self._set_history(json.loads(model.history_json())["epochs"])
        if stop is not None:
            # Ctrl-C: the estimator keeps the best weights so far, then the interrupt
            # goes on as Python expects.
            raise stop
        return self

    def _set_history(self, records):
        self.n_iter_ = len(records)
        if _data.pd is not None:
            self.history_ = _data.pd.DataFrame.from_records(records)
        else:
            self.history_ = records

    def _outputs(self, X):
        # check_is_fitted's own check, without its tag look-ups (microseconds a call).
        if getattr(self, "_model", None) is None:
            check_is_fitted(self, "_model")
        columns = self._fast_columns(X)
        if columns is None:
            columns, _ = self._x_columns(X, reset=False)
        return self._model.predict(columns, self._names)

    # -- run folders and pickling -----------------------------------------------------

    def save(self, path):
        """Writes the run folder ``backprop train`` writes: ``model.safetensors``,
        ``model.json`` (which ``backprop predict`` and ``backprop.load`` read),
        ``metrics.json``, ``history.csv``, ``loss_curve.svg``, ``report.html``..."""
        check_is_fitted(self, "_model")
        path = os.fspath(path)
        if self._run_files is not None:
            os.makedirs(path, exist_ok=True)
            for name, data in self._run_files.items():
                with open(os.path.join(path, name), "wb") as f:
                    f.write(data)
        else:
            self._model.save(path)
        return path

    def _files(self):
        if self._run_files is not None:
            return dict(self._run_files)
        tmp = tempfile.mkdtemp(prefix="backprop-")
        try:
            self._model.save(tmp)
            return _read_folder(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def __getstate__(self):
        # A copy: object.__getstate__ hands back the instance's own __dict__.
        state = dict(super().__getstate__())
        if "_model" in state:
            state["_run_files"] = self._files()
            del state["_model"]
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if state.get("_run_files") is not None:
            self._model = _model_from_files(state["_run_files"])


def _read_folder(path, skip=("checkpoint",)):
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not name.startswith(skip):
            with open(full, "rb") as f:
                files[name] = f.read()
    return files


def _model_from_files(files):
    tmp = tempfile.mkdtemp(prefix="backprop-")
    try:
        for name, data in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        return _core.load(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class MLPRegressor(RegressorMixin, _Base):
    """A feed-forward network trained by backpropagation, for a numeric target.

    Keywords are the settings of ``backprop train`` (same names, ``-`` written ``_``,
    same defaults): ``hidden`` widths, ``activation``, ``loss`` (mse, mae, huber),
    ``optimizer``, ``lr`` (a rate or ``"auto"``), ``batch_size`` (rows or ``"full"``;
    default 256, or 16 below 2,560 training rows), ``epochs``, ``schedule``,
    ``patience`` (early stopping), ``valid_fraction`` (rows held out to keep the best
    epoch's weights), ``scale`` and ``target_transform`` of the preprocessing (the
    default ``scale="select"`` trains with quantile and with standard scaling and keeps
    the one that validates better), ``keep`` (``"best"``, the default for the default
    network, keeps the network without hidden layers when it validates better;
    ``"network"`` never does), ``class_weight`` (``"balanced"`` for the classifier:
    every class weighs the same in the cost), ``seed`` and ``threads`` (default: all cores; results do
    not depend on it). ``verbose`` prints a line per epoch.

    X may be a float array (NaN = missing) or a pandas DataFrame with text and missing
    cells; both are preprocessed exactly as ``backprop train`` preprocesses a CSV file.
    """

    def fit(self, X, y):
        """Trains on X, y; returns self. Ctrl-C stops training, keeps the best weights
        so far and raises KeyboardInterrupt."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y_name = getattr(y, "name", None)
        if _data.is_dataframe(X):
            y = _checked_y(self, X, y, numeric=True)
        else:
            X, y = validate_data(
                self, X, y, dtype=_FLOATS, ensure_all_finite="allow-nan", y_numeric=True
            )
        y = np.asarray(y, dtype=np.float64)
        return self._fit(X, y_name, y)

    def predict(self, X):
        """Predicted targets, in their units."""
        return self._outputs(X)[:, 0].astype(np.float64)


def _checked_y(estimator, X, y, numeric):
    """y of a DataFrame X, checked as validate_data checks it beside an array."""
    y = _check_y(y, multi_output=False, y_numeric=numeric, estimator=estimator)
    check_consistent_length(X, y)
    return y


class MLPClassifier(ClassifierMixin, _Base):
    """A feed-forward network trained by backpropagation, for class labels (softmax
    output, cross-entropy). Keywords and inputs as for :class:`MLPRegressor`."""

    _classify = True

    def fit(self, X, y):
        """Trains on X, y; returns self. Ctrl-C stops training, keeps the best weights
        so far and raises KeyboardInterrupt."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y_name = getattr(y, "name", None)
        if _data.is_dataframe(X):
            y = _checked_y(self, X, y, numeric=False)
        else:
            X, y = validate_data(self, X, y, dtype=_FLOATS, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"Classifier can't train when only one class is present: {classes[0]!r}"
            )
        labels = [str(c) for c in classes]
        if len(set(labels)) != len(labels):
            raise ValueError("class labels must differ as text: " + ", ".join(labels))
        y_text = [str(v) for v in y]
        self._fit(X, y_name, y_text)
        self.classes_ = classes
        self._order = _order(self._model.classes(), labels)
        return self

    def predict_proba(self, X):
        """Probability of each class of ``classes_``, per row."""
        return self._outputs(X)[:, self._order].astype(np.float64)

    def predict(self, X):
        """The most probable class of each row."""
        p = self._outputs(X)
        best = np.argmax(p, axis=1)
        return self._model_classes()[best]

    def _model_classes(self):
        # classes_ in the model's order (that of the probability columns it computes).
        inverse = np.empty(len(self._order), dtype=int)
        inverse[self._order] = np.arange(len(self._order))
        return self.classes_[inverse]


def _order(model_classes, labels):
    """For each label of classes_, its column in the model's output."""
    where = {c: i for i, c in enumerate(model_classes)}
    missing = [c for c in labels if c not in where]
    if missing or len(model_classes) != len(labels):
        raise ValueError(f"the model's classes {model_classes} are not {labels}")
    return np.array([where[c] for c in labels], dtype=int)
