"""From what users pass to ``fit``/``predict`` to the named, typed columns the Rust side
reads: numbers as 1-D float64/float32 arrays (NaN = missing), text as lists of str
("" = missing), the same columns a CSV file gives ``backprop train``.
"""

import numpy as np

try:  # pandas is optional
    import pandas as pd
except ImportError:  # pragma: no cover - exercised only without pandas
    pd = None


def is_dataframe(X):
    return pd is not None and isinstance(X, pd.DataFrame)


def array_columns(X):
    """Columns of a validated 2-D float array, as views (no copy)."""
    return [X[:, j] for j in range(X.shape[1])]


def _text(values):
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)) or (pd is not None and v is pd.NA):
            out.append("")
        elif pd is not None and v is pd.NaT:
            out.append("")
        else:
            out.append(str(v))
    return out


def series_column(s):
    """One DataFrame column: numbers (bool as 0/1) or text."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        if dtype == np.float32:
            return s.to_numpy(dtype=np.float32)
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise ValueError(
                f"Input X contains infinity in column {s.name!r}; replace it "
                "(NaN marks a missing cell, which is filled in as the command line does)"
            )
        return values
    if pd.api.types.is_complex_dtype(dtype):
        raise ValueError(f"Complex data not supported (column {s.name!r})")
    return _text(s.tolist())


def dataframe_columns(X):
    return [series_column(X.iloc[:, j]) for j in range(X.shape[1])]


def column_names(X):
    """Names of the columns: a DataFrame's own, or x0, x1, ... for arrays."""
    if is_dataframe(X):
        return [str(c) for c in X.columns]
    return [f"x{j}" for j in range(X.shape[1])]


def target_name(name, names):
    """The target's name: ``name`` (a Series' own) if it is text, else ``y``; never one
    of the features'."""
    base = str(name) if isinstance(name, str) and name else "y"
    candidate, k = base, 1
    while candidate in names:
        candidate = f"{base}_{k}"
        k += 1
    return candidate
