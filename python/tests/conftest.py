"""Shared fixtures: the repository, the `backprop` binary, small data sets."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cli():
    """Runs the `backprop` command (BACKPROP_BIN, else target/release/backprop)."""
    binary = Path(os.environ.get("BACKPROP_BIN", REPO / "target" / "release" / "backprop"))
    if not binary.is_file():
        pytest.fail(f"{binary}: build it first (cargo build --release) or set BACKPROP_BIN")

    def run(*args, check=True):
        r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"backprop {' '.join(map(str, args))} failed:\n{r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def california():
    """The California housing table (20,640 rows) as a DataFrame, parsed exactly."""
    return pd.read_csv(REPO / "data" / "california_housing" / "california_housing.csv")


def mixed_frame(n=300, seed=0):
    """A table with numbers, text and missing cells in both, and a numeric target."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.uniform(0, 10, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n).astype(object)
    size = rng.choice(["S", "M", "L", "XL"], size=n).astype(object)
    y = 2 * a - 0.3 * b + (colour == "red") * 1.5 + rng.normal(scale=0.1, size=n)
    a[rng.choice(n, 20, replace=False)] = np.nan
    colour[rng.choice(n, 15, replace=False)] = None
    return pd.DataFrame({"a": a, "b": b, "colour": colour, "size": size, "y": y})


def write_csv(df, path):
    """Writes a frame so that every number reads back exactly (shortest round-trip
    text) and a missing cell is an empty field."""
    lines = [",".join(df.columns)]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if v is None or (isinstance(v, float) and np.isnan(v)):
                cells.append("")
            elif isinstance(v, (float, np.floating)):
                cells.append(repr(float(v)))
            else:
                cells.append(str(v))
        lines.append(",".join(cells))
    Path(path).write_text("\n".join(lines) + "\n")
