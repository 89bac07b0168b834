#!/usr/bin/env python3
"""Checks ONNX files written by `backprop export` with the ONNX tools themselves.

Run by the Rust test `onnxruntime_matches_predict_for_every_model_kind`
(crates/backprop-cli/tests/onnx.rs), which trains the models, exports them and writes
`backprop predict`'s output beside them, then calls:

    python3 onnx_check.py CASES.json

CASES.json lists {"name", "onnx", "data", "kind": "csv" | "idx", "predictions"}. For
each case this runs `onnx.checker.check_model(full_check=True)`, feeds the raw rows of
`data` (the CSV cells as they are, or the IDX images' pixels) to ONNX Runtime, and
compares with the predictions file: regression within 1e-5 relative (1e-6 absolute
for predictions nearer zero than 0.1: float rounding does not shrink with the output),
probabilities
within 1e-6 absolute, labels equal (unless predict's top two probabilities are within
1e-6, where either label is right). Exits 1 if anything differs and 2 if the Python
packages are missing (`python3 -m pip install onnx onnxruntime numpy`), so a machine
without them fails the test instead of skipping it.
"""

import csv
import gzip
import json
import math
import struct
import sys
import time

MISSING = {"", "NA", "N/A", "null", "NULL"}  # the CSV reader's missing texts
REL = 1e-5
FLOOR = 0.1  # relative to |prediction|, or absolute 1e-6 below 0.1 in target units
ABS_P = 1e-6


def read_idx_images(path):
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    assert magic == 0x803, f"{path}: not an IDX image file"
    pixels = np.frombuffer(data[16:], dtype=np.uint8, count=count * rows * cols)
    return pixels.reshape(count, rows * cols).astype(np.float32)


def csv_feeds(session, path):
    import numpy as np

    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    feeds = {}
    for inp in session.get_inputs():
        j = header.index(inp.name)
        cells = [r[j].strip() for r in body]
        if inp.type == "tensor(double)":
            v = [math.nan if c in MISSING else float(c) for c in cells]
            feeds[inp.name] = np.array(v, dtype=np.float64).reshape(-1, 1)
        elif inp.type == "tensor(string)":
            feeds[inp.name] = np.array(cells, dtype=object).reshape(-1, 1)
        else:
            raise ValueError(f"input {inp.name} has unexpected type {inp.type}")
    return feeds


def check(case):
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(case["onnx"])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(case["onnx"], providers=["CPUExecutionProvider"])
    if case["kind"] == "idx":
        feeds = {"pixels": read_idx_images(case["data"])}
    else:
        feeds = csv_feeds(session, case["data"])
    start = time.perf_counter()
    outs = session.run(None, feeds)
    ms = (time.perf_counter() - start) * 1e3
    out = dict(zip([o.name for o in session.get_outputs()], outs))
    with open(case["predictions"], newline="") as f:
        pred = list(csv.DictReader(f))
    predicted = [k for k in pred[0] if k.endswith("_predicted")][-1]
    problems = []
    if "prediction" in out:
        want = np.array([float(r[predicted]) for r in pred])
        got = out["prediction"][:, 0].astype(np.float64)
        rel = np.abs(got - want) / np.maximum(np.abs(want), FLOOR)
        worst = float(rel.max())
        if not worst <= REL:
            i = int(rel.argmax())
            problems.append(f"row {i}: onnxruntime {got[i]!r}, predict {want[i]!r} (relative {worst:.3g})")
        summary = f"max relative difference {worst:.3g}"
    else:
        classes = json.loads({p.key: p.value for p in model.metadata_props}["classes"])
        want = np.array([[float(r[f"p_{c}"]) for c in classes] for r in pred])
        got = out["probabilities"].astype(np.float64)
        diff = np.abs(got - want)
        worst = float(diff.max())
        if not worst <= ABS_P:
            i = int(diff.max(axis=1).argmax())
            problems.append(f"row {i}: probabilities {got[i]} vs predict {want[i]} (absolute {worst:.3g})")
        labels = [str(x) for x in out["label"]]
        for i, r in enumerate(pred):
            if labels[i] != r[predicted]:
                top = np.sort(want[i])[-2:]
                if top[1] - top[0] > ABS_P:
                    problems.append(f"row {i}: label {labels[i]} vs predict {r[predicted]}")
                    break
        summary = f"max probability difference {worst:.3g}"
    rows = len(pred)
    print(f"{case['name']}: checker ok, {rows} rows, {summary}, onnxruntime {ms:.1f} ms")
    return problems


def main():
    try:
        import numpy  # noqa: F401
        import onnx
        import onnxruntime
    except ImportError as e:
        print(f"onnx_check: {e}; install them with: python3 -m pip install onnx onnxruntime numpy",
              file=sys.stderr)
        return 2
    print(f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}")
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    failed = 0
    for case in cases:
        try:
            problems = check(case)
        except Exception as e:  # the checker's and the runtime's errors alike
            problems = [f"{type(e).__name__}: {e}"]
        for p in problems:
            print(f"FAIL {case['name']}: {p}")
        failed += bool(problems)
    print(f"{len(cases) - failed} of {len(cases)} models match")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
