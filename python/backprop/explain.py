"""The numbers behind ``backprop explain descent|landscape|lr``, as numpy arrays in
dicts (the command line draws its pages from the same computation)."""

import json
import os
import shutil
import tempfile

import numpy as np

from . import _core, _data
from ._estimators import MLPClassifier, MLPRegressor


def lr(X, y, estimator=None, lr_min=1e-6, lr_max=1.0, steps=200):
    """The learning-rate range test (``explain lr``): one mini-batch per rate, the rate
    growing geometrically from ``lr_min`` to ``lr_max``, on the training rows
    ``estimator.fit(X, y)`` would use with its settings (default: ``MLPRegressor()``).

    Returns ``lrs``, ``losses``, ``smoothed`` (arrays), ``min_index``,
    ``steepest_index`` and ``suggestion`` (the rate ``lr="auto"`` picks)."""
    est = MLPRegressor() if estimator is None else estimator
    classify = isinstance(est, MLPClassifier)
    if _data.is_dataframe(X):
        columns, names = _data.dataframe_columns(X), _data.column_names(X)
    else:
        from sklearn.utils.validation import check_array

        X = check_array(X, dtype=(np.float64, np.float32), ensure_all_finite="allow-nan")
        columns, names = _data.array_columns(X), _data.column_names(X)
    y_name = getattr(y, "name", None)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(columns[0]):
        raise ValueError(f"y must be 1-D with one value per row of X, got shape {y.shape}")
    y_column = [str(v) for v in y] if classify else np.asarray(y, dtype=np.float64)
    target = _data.target_name(y_name, names)
    return _core.explain_lr(
        est._settings_json(), columns, names, y_column, target, classify,
        float(lr_min), float(lr_max), int(steps),
    )


def descent(feature="MedInc", grid=81, steps=40, seed=42):
    """Gradient descent on a brute-forced cost surface (``explain descent``): price
    from one feature of the embedded California data, a line ``w x + b``. Returns the
    grid (``ws``, ``bs``, ``grid[b][w]``), the least-squares answer, and ``paths``:
    one dict per walk (``kind``, ``name``, ``lr``, ``batch``, ``params``, ``costs``)."""
    return _core.explain_descent(str(feature), int(grid), int(steps), int(seed))


def landscape(model, data=None, split="train", rows=2000, points=41, grid=21, span=1.0, seed=1, delimiter=None):
    """The cost around a trained network's weights (``explain landscape``): ``curves``
    along three random filter-normalised directions at ``alphas``, the ``plane`` of two
    of them on ``axis``, and (when the run recorded it) the plane of the training
    ``path``. ``model`` is a run folder or a fitted estimator; ``data`` the CSV file it
    was trained on (default: the embedded California data), whose split is rebuilt."""
    if isinstance(model, (MLPRegressor, MLPClassifier)):
        tmp = tempfile.mkdtemp(prefix="backprop-")
        try:
            model.save(tmp)
            return landscape(tmp, data, split, rows, points, grid, span, seed, delimiter)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _core.explain_landscape(
        os.fspath(model), None if data is None else os.fspath(data), delimiter,
        str(split), int(rows), int(points), int(grid), float(span), int(seed),
    )
