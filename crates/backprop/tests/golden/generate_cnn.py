#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures of the image layers that
crates/backprop/tests/golden_cnn.rs checks.

Run by hand (never by CI or `cargo test`), from the repository root:

    pip install torch          # tested with torch 2.15 (CPU is enough)
    python3 crates/backprop/tests/golden/generate_cnn.py

It rewrites `layers_cnn.json` beside this script: for each case, one layer (Conv2d,
MaxPool2d, AvgPool2d, Flatten, Dropout in eval mode) on a small NCHW batch of odd
sizes, with strides above 1 and padding, its output, and the gradients of
`L = sum(output * c)` for a fixed `c` with respect to the input and to the layer's
parameters (flat, in state_dict order: weight `[out, in, kh, kw]` then bias).

Inputs are drawn in float32 from fixed seeds so the Rust side gets the same numbers;
PyTorch computes in float64, so the fixture holds the exact answer for those inputs.
"""

import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DT = torch.float64

ACT = {"identity": lambda z: z, "relu": torch.relu, "tanh": torch.tanh}


def f32(*shape, gen):
    return torch.randn(*shape, generator=gen, dtype=torch.float32)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(name, kind, config, layer, input_shape, batch, act, seed):
    gen = torch.Generator().manual_seed(seed)
    x32 = f32(batch, *input_shape, gen=gen)
    params32 = [f32(*p.shape, gen=gen) * 0.5 for p in layer.parameters()]
    with torch.no_grad():
        for p, v in zip(layer.parameters(), params32):
            p.copy_(v.to(DT))
    x = x32.to(DT).requires_grad_(True)
    out = ACT[act](layer(x))
    c32 = f32(*out.shape, gen=gen)
    (out * c32.to(DT)).sum().backward()
    grads = [g for p in layer.parameters() for g in flat(p.grad)]
    return {
        "name": name,
        "kind": kind,
        "config": config,
        "activation": act,
        "input": list(input_shape),
        "batch": batch,
        "x": flat(x32),
        "params": [v for p in params32 for v in flat(p)],
        "c": flat(c32),
        "out": flat(out),
        "dx": flat(x.grad),
        "dparams": grads,
    }


def conv(name, c, oc, hw, k, s, p, act, batch, seed):
    layer = nn.Conv2d(c, oc, k, stride=s, padding=p).to(DT)
    kh, kw = (k, k) if isinstance(k, int) else k
    cfg = {"out_channels": oc, "kernel": [kh, kw], "stride": s, "padding": p}
    return case(name, "conv2d", cfg, layer, (c, *hw), batch, act, seed)


def pool(name, kind, c, hw, k, s, p, batch, seed):
    if kind == "maxpool2d":
        layer = nn.MaxPool2d(k, stride=s, padding=p)
    else:
        layer = nn.AvgPool2d(k, stride=s, padding=p, count_include_pad=True)
    cfg = {"kernel": k, "stride": s, "padding": p}
    return case(name, kind, cfg, layer, (c, *hw), batch, "identity", seed)


def main():
    cases = [
        conv("conv 3x3 pad 1", 2, 3, (5, 7), 3, 1, 1, "identity", 2, 1),
        conv("conv 3x2 stride 2", 3, 4, (7, 6), (3, 2), 2, 0, "identity", 3, 2),
        conv("conv 5x5 stride 2 pad 2 relu", 2, 5, (6, 5), 5, 2, 2, "relu", 2, 3),
        conv("conv 1x1 tanh", 4, 2, (3, 3), 1, 1, 0, "tanh", 2, 4),
        conv("conv 3x3 stride 3 pad 1 on 1 channel", 1, 6, (11, 9), 3, 3, 1, "relu", 2, 5),
        pool("maxpool 2", "maxpool2d", 3, (5, 7), 2, 2, 0, 2, 6),
        pool("maxpool 3 stride 2 pad 1", "maxpool2d", 2, (7, 6), 3, 2, 1, 2, 7),
        pool("maxpool 2 stride 1", "maxpool2d", 1, (4, 5), 2, 1, 0, 3, 8),
        pool("avgpool 2", "avgpool2d", 3, (5, 7), 2, 2, 0, 2, 9),
        pool("avgpool 3 stride 2 pad 1", "avgpool2d", 2, (7, 6), 3, 2, 1, 2, 10),
        case("flatten", "flatten", {}, nn.Flatten(), (3, 4, 5), 2, "identity", 11),
        case("dropout eval", "dropout", {"p": 0.5}, nn.Dropout(0.5).eval(), (7,), 3,
             "identity", 12),
    ]
    out = {"torch_version": torch.__version__, "cases": cases}
    path = os.path.join(HERE, "layers_cnn.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
