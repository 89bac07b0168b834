#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures of the numeric-feature embeddings that
crates/backprop/tests/embeddings.rs checks.

Run by hand (never by CI or `cargo test`), from the repository root:

    pip install torch          # tested with torch 2.15 (CPU is enough)
    python3 crates/backprop/tests/golden/generate_embeddings.py

It rewrites `layers_embeddings.json` beside this script: for each case, a periodic
embedding layer written as the reference implementation writes it
(`rtdl_num_embeddings.PeriodicEmbeddings(lite=False)`: `periodic.weight` `c` of shape
`[n, k]`, then `relu(NLinear([cos(2 pi c x), sin(2 pi c x)]))` with `linear.weight`
`[n, 2k, d]` and `linear.bias` `[n, d]`), on a small batch, its output (`[batch, n, d]`
flattened, feature by feature), and the gradients of `L = sum(output * g)` for a fixed
`g` with respect to the input and to the parameters (flat, in that order).

Inputs are drawn in float32 from fixed seeds so the Rust side gets the same numbers;
PyTorch computes in float64, so the fixture holds the exact answer for those inputs.
"""

import json
import math
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DT = torch.float64


class Periodic(nn.Module):
    """x [batch, n] -> [cos(2 pi c x), sin(2 pi c x)] [batch, n, 2k]."""

    def __init__(self, n, k):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, k, dtype=DT))

    def forward(self, x):
        x = 2 * math.pi * self.weight * x[..., None]
        return torch.cat([torch.cos(x), torch.sin(x)], -1)


class NLinear(nn.Module):
    """A linear layer per feature: [batch, n, i] -> [batch, n, o]."""

    def __init__(self, n, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, i, o, dtype=DT))
        self.bias = nn.Parameter(torch.empty(n, o, dtype=DT))

    def forward(self, x):
        return (x[..., None, :] @ self.weight).squeeze(-2) + self.bias


class PeriodicEmbeddings(nn.Module):
    def __init__(self, n, k, d):
        super().__init__()
        self.periodic = Periodic(n, k)
        self.linear = NLinear(n, 2 * k, d)

    def forward(self, x):
        return torch.relu(self.linear(self.periodic(x)))


def f32(*shape, gen, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * scale


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(name, n, k, d, batch, c_scale, seed):
    gen = torch.Generator().manual_seed(seed)
    layer = PeriodicEmbeddings(n, k, d)
    x32 = f32(batch, n, gen=gen)
    scales = {"periodic.weight": c_scale}
    params32 = [
        f32(*p.shape, gen=gen, scale=scales.get(name_, 0.5))
        for name_, p in layer.named_parameters()
    ]
    with torch.no_grad():
        for p, v in zip(layer.parameters(), params32):
            p.copy_(v.to(DT))
    x = x32.to(DT).requires_grad_(True)
    out = layer(x)
    g32 = f32(*out.shape, gen=gen)
    (out * g32.to(DT)).sum().backward()
    return {
        "name": name,
        "kind": "periodic",
        "config": {"features": n, "frequencies": k, "width": d, "sigma": c_scale},
        "batch": batch,
        "x": flat(x32),
        "params": [v for p in params32 for v in flat(p)],
        "c": flat(g32),
        "out": flat(out),
        "dx": flat(x.grad),
        "dparams": [v for p in layer.parameters() for v in flat(p.grad)],
        "names": [n_ for n_, _ in layer.named_parameters()],
    }


def main():
    cases = [
        case("periodic 3 features, k 4, d 5", 3, 4, 5, 4, 1.0, 1),
        case("periodic 1 feature, k 1, d 1", 1, 1, 1, 3, 0.5, 2),
        case("periodic 5 features, k 8, d 3, small frequencies", 5, 8, 3, 6, 0.1, 3),
        case("periodic 2 features, k 3, d 7, large frequencies", 2, 3, 7, 5, 3.0, 4),
    ]
    out = {"torch_version": torch.__version__, "cases": cases}
    path = os.path.join(HERE, "layers_embeddings.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
