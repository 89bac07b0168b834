#!/usr/bin/env python3
"""Writes the PyTorch golden fixtures that crates/backprop/tests/golden.rs checks.

Run by hand (never by CI or `cargo test`), from the repository root:

    pip install torch          # tested with torch 2.15 (CPU is enough)
    python3 crates/backprop/tests/golden/generate.py

It rewrites, beside this script:

  networks.json  forward outputs, mean loss and the gradient of every parameter, for
                 small fixed networks with every hidden activation, every loss and the
                 squashing output activations;
  schedules.json the learning rate of every step of each schedule over a longer run
                 (one-cycle per mini-batch; reduce-on-plateau fed a fixed sequence of
                 losses), compared with the library's schedule directly;
  training.json  parameters, learning rate and training loss after every epoch of a
                 few epochs of training with each optimizer (SGD, momentum, Nesterov,
                 weight decay, Adam, Adam + L2, AdamW, RMSprop with and without
                 momentum), each learning-rate schedule (step, exponential, cosine,
                 one-cycle, reduce-on-plateau) and gradient-norm clipping, full batch
                 and mini-batch (in order, no shuffling).

Everything is generated from fixed seeds. Inputs (weights, data) are drawn in float32
so the Rust side gets exactly the same numbers; the reference computation then runs in
float64, so the fixtures hold the exact answer for those float32 inputs and the Rust
test's tolerance measures only our own float32 rounding.

Conventions mirrored from the Rust library (see src/optim/mod.rs, src/optim/schedule.rs
and src/train.rs):
  * flat parameter order: layers.0.weight (out x in, row-major), layers.0.bias,
    layers.1.weight, ...  (nn.Linear / state_dict order);
  * losses use reduction="mean"; cross-entropy takes probability (one-hot) targets;
  * epoch schedules are stepped once per epoch, one-cycle once per mini-batch,
    reduce-on-plateau with the validation loss measured after the epoch;
  * the epoch's training loss is the mean over its steps of each step's (pre-update)
    loss, weighted by the rows in the step; the recorded lr is the last step's.
"""

import json
import math
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DT = torch.float64

ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
    "elu": lambda z: F.elu(z, 1.0),
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "softmax": lambda z: torch.softmax(z, dim=1),
}
KINKED = {"relu", "leaky_relu", "elu"}

LOSSES = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": lambda p, y: F.huber_loss(p, y, delta=1.0),
    "bce": F.binary_cross_entropy_with_logits,
    "cross_entropy": F.cross_entropy,  # probability targets
}


def f32_list(t):
    """A float32 tensor's values as exact Python floats."""
    return [float(v) for v in t.detach().to(torch.float32).reshape(-1)]


def f64_list(t):
    return [float(v) for v in t.detach().to(DT).reshape(-1)]


class Mlp:
    """Linear layers with per-layer activations, parameters as float64 leaves."""

    def __init__(self, sizes, hidden, output, gen):
        self.sizes, self.hidden, self.output = sizes, hidden, output
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_out, fan_in, generator=gen, dtype=torch.float32) * 2 - 1) * bound
            b = (torch.rand(fan_out, generator=gen, dtype=torch.float32) * 2 - 1) * bound
            self.params += [w.to(DT).requires_grad_(), b.to(DT).requires_grad_()]
        self.min_kink_distance = math.inf

    def forward(self, x):
        a = x
        layers = len(self.sizes) - 1
        for i in range(layers):
            w, b = self.params[2 * i], self.params[2 * i + 1]
            z = a @ w.T + b
            act = self.output if i == layers - 1 else self.hidden
            if act in KINKED:
                self.min_kink_distance = min(self.min_kink_distance, float(z.detach().abs().min()))
            a = ACTIVATIONS[act](z)
        return a

    def flat(self):
        return [v for p in self.params for v in f64_list(p)]

    def flat_grad(self):
        return [v for p in self.params for v in f64_list(p.grad)]


def data(gen, rows, sizes, loss):
    x = torch.randn(rows, sizes[0], generator=gen, dtype=torch.float32)
    outs = sizes[-1]
    if loss == "cross_entropy":
        labels = torch.randint(0, outs, (rows,), generator=gen)
        y = F.one_hot(labels, outs).to(torch.float32)
    elif loss == "bce":
        y = torch.randint(0, 2, (rows, outs), generator=gen).to(torch.float32)
        # Some soft targets too (the loss accepts any y in [0, 1]).
        y[0] = torch.rand(outs, generator=gen, dtype=torch.float32)
    else:
        y = torch.randn(rows, outs, generator=gen, dtype=torch.float32)
    return x, y


def network_case(name, sizes, hidden, output, loss, seed, rows=6):
    gen = torch.Generator().manual_seed(seed)
    net = Mlp(sizes, hidden, output, gen)
    x, y = data(gen, rows, sizes, loss)
    out = net.forward(x.to(DT))
    value = LOSSES[loss](out, y.to(DT))
    value.backward()
    # Away from kinks, float32 and float64 agree on which side every point lies.
    assert net.min_kink_distance > 1e-4, (name, net.min_kink_distance)
    if loss == "mae":
        assert float((out - y.to(DT)).detach().abs().min()) > 1e-4, name
    if loss == "huber":
        assert float(((out - y.to(DT)).detach().abs() - 1).abs().min()) > 1e-4, name
    return {
        "name": name,
        "sizes": sizes,
        "hidden": hidden,
        "output": output,
        "loss": loss,
        "params": [v for p in net.params for v in f32_list(p)],
        "x": f32_list(x),
        "y": f32_list(y),
        "output_values": f64_list(out),
        "loss_value": float(value.detach()),
        "grads": net.flat_grad(),
    }


def make_optimizer(spec, params, lr):
    kind = spec["kind"]
    wd = spec.get("weight_decay", 0.0)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=spec.get("momentum", 0.0), nesterov=spec.get("nesterov", False), weight_decay=wd)
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, momentum=spec.get("momentum", 0.0), weight_decay=wd)
    raise ValueError(kind)


def make_schedule(spec, opt, epochs, steps_per_epoch):
    kind = spec["kind"]
    S = torch.optim.lr_scheduler
    if kind == "constant":
        return None
    if kind == "step":
        return S.StepLR(opt, step_size=spec["every"], gamma=spec["gamma"])
    if kind == "exponential":
        return S.ExponentialLR(opt, gamma=spec["gamma"])
    if kind == "cosine":
        return S.CosineAnnealingLR(opt, T_max=epochs, eta_min=spec["min_lr"])
    if kind == "one_cycle":
        return S.OneCycleLR(
            opt,
            max_lr=opt.param_groups[0]["lr"],
            total_steps=epochs * steps_per_epoch,
            pct_start=spec["pct_start"],
            anneal_strategy="cos",
            cycle_momentum=False,
            div_factor=25.0,
            final_div_factor=1e4,
            three_phase=False,
        )
    if kind == "plateau":
        return S.ReduceLROnPlateau(opt, mode="min", factor=spec["factor"], patience=spec["patience"], threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=spec["min_lr"])
    raise ValueError(kind)


def training_case(name, optimizer, lr, schedule=None, clip_norm=None, epochs=5, batch_size=None, rows=8, sizes=(4, 5, 3, 2), hidden="tanh", loss="mse", seed=7, valid=False):
    schedule = schedule or {"kind": "constant"}
    sizes = list(sizes)
    gen = torch.Generator().manual_seed(seed)
    net = Mlp(sizes, hidden, "identity", gen)
    initial = [v for p in net.params for v in f32_list(p)]
    x, y = data(gen, rows, sizes, loss)
    # The validation targets are the training targets negated (for regression), so the
    # validation loss rises as training succeeds and reduce-on-plateau has work to do.
    vx, vy = (x, -y) if valid else (None, None)
    batch = batch_size or rows
    steps = math.ceil(rows / batch)
    opt = make_optimizer(optimizer, net.params, lr)
    sched = make_schedule(schedule, opt, epochs, steps)
    per_epoch = []
    for epoch in range(epochs):
        loss_sum = 0.0
        for s in range(steps):
            xb, yb = x[s * batch:(s + 1) * batch].to(DT), y[s * batch:(s + 1) * batch].to(DT)
            step_lr = opt.param_groups[0]["lr"]
            opt.zero_grad()
            value = LOSSES[loss](net.forward(xb), yb)
            value.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(net.params, clip_norm)
            opt.step()
            if schedule["kind"] == "one_cycle":
                sched.step()
            loss_sum += float(value.detach()) * len(xb)
        valid_loss = None
        if valid:
            with torch.no_grad():
                valid_loss = float(LOSSES[loss](net.forward(vx.to(DT)), vy.to(DT)))
        if schedule["kind"] == "plateau":
            sched.step(valid_loss if valid else loss_sum / rows)
        elif sched is not None and schedule["kind"] != "one_cycle":
            sched.step()
        per_epoch.append({"params": net.flat(), "lr": step_lr, "train_loss": loss_sum / rows, "valid_loss": valid_loss})
    assert net.min_kink_distance > 1e-4, (name, net.min_kink_distance)
    return {
        "name": name,
        "sizes": sizes,
        "hidden": hidden,
        "loss": loss,
        "params": initial,
        "x": f32_list(x),
        "y": f32_list(y),
        "valid": valid,
        "optimizer": optimizer,
        "lr": lr,
        "schedule": schedule,
        "clip_norm": clip_norm,
        "epochs": epochs,
        "batch_size": batch_size,
        "expected": per_epoch,
    }


def networks():
    cases = []
    seed = 1000
    for hidden in ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"]:
        for loss in LOSSES:
            seed += 1
            cases.append(network_case(f"4-5-3-2 {hidden} {loss}", [4, 5, 3, 2], hidden, "identity", loss, seed))
    cases.append(network_case("4-5-3-2 tanh->sigmoid mse", [4, 5, 3, 2], "tanh", "sigmoid", "mse", 2001))
    cases.append(network_case("4-5-3-3 relu->softmax mse", [4, 5, 3, 3], "relu", "softmax", "mse", 2002))
    cases.append(network_case("4-2 logistic regression bce", [4, 2], "tanh", "identity", "bce", 2003))
    cases.append(network_case("4-3 softmax regression cross_entropy", [4, 3], "tanh", "identity", "cross_entropy", 2004))
    return cases


def training():
    sgd = {"kind": "sgd"}
    mom = {"kind": "sgd", "momentum": 0.9}
    return [
        training_case("sgd", sgd, 0.1),
        training_case("sgd momentum", mom, 0.1),
        training_case("nesterov", {"kind": "sgd", "momentum": 0.9, "nesterov": True}, 0.1),
        training_case("sgd weight decay", {"kind": "sgd", "weight_decay": 0.1}, 0.1),
        training_case("nesterov weight decay", {"kind": "sgd", "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, 0.1),
        training_case("adam", {"kind": "adam"}, 0.01),
        training_case("adam weight decay", {"kind": "adam", "weight_decay": 0.1}, 0.01),
        training_case("adamw", {"kind": "adamw", "weight_decay": 0.1}, 0.01),
        training_case("rmsprop", {"kind": "rmsprop"}, 0.01),
        training_case("rmsprop momentum", {"kind": "rmsprop", "momentum": 0.9}, 0.01),
        training_case("rmsprop weight decay", {"kind": "rmsprop", "weight_decay": 0.1}, 0.01),
        training_case("step schedule", mom, 0.1, {"kind": "step", "every": 2, "gamma": 0.5}, epochs=6),
        training_case("exponential schedule", {"kind": "adam"}, 0.02, {"kind": "exponential", "gamma": 0.7}),
        training_case("cosine schedule", sgd, 0.2, {"kind": "cosine", "min_lr": 0.01}, epochs=6),
        training_case("one-cycle schedule", mom, 0.2, {"kind": "one_cycle", "pct_start": 0.3}, epochs=4, batch_size=4),
        training_case("plateau schedule", sgd, 0.1, {"kind": "plateau", "factor": 0.5, "patience": 1, "min_lr": 0.02}, epochs=8, valid=True),
        training_case("sgd clip norm", sgd, 0.1, clip_norm=0.05),
        training_case("adam clip norm mini-batch", {"kind": "adam"}, 0.01, clip_norm=0.1, batch_size=3),
        training_case("relu cross_entropy adam mini-batch", {"kind": "adam"}, 0.01, batch_size=3, hidden="relu", loss="cross_entropy", seed=11),
        training_case("relu bce nesterov mini-batch", {"kind": "sgd", "momentum": 0.9, "nesterov": True}, 0.05, batch_size=5, hidden="relu", loss="bce", seed=13),
    ]


def schedule_case(spec, lr, epochs, steps_per_epoch, losses=None):
    param = torch.zeros(1, dtype=DT, requires_grad=True)
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_schedule(spec, opt, epochs, steps_per_epoch)
    lrs = []
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if spec["kind"] == "one_cycle":
                sched.step()
        if spec["kind"] == "plateau":
            sched.step(losses[epoch])
        elif sched is not None and spec["kind"] != "one_cycle":
            sched.step()
    return {"schedule": spec, "lr": lr, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "losses": losses, "lrs": lrs}


def schedules():
    # Losses for reduce-on-plateau: improvements, ties, improvements smaller than the
    # relative threshold 1e-4, and a long stall that reaches min_lr.
    losses = [1.0, 0.9, 0.9, 0.95, 0.89995, 0.85, 0.85, 0.86, 0.8, 0.79999, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86, 0.87, 0.5, 0.6]
    return [
        schedule_case({"kind": "constant"}, 0.1, 5, 2),
        schedule_case({"kind": "step", "every": 3, "gamma": 0.3}, 0.1, 10, 2),
        schedule_case({"kind": "exponential", "gamma": 0.9}, 0.05, 12, 1),
        schedule_case({"kind": "cosine", "min_lr": 0.001}, 0.1, 12, 2),
        schedule_case({"kind": "cosine", "min_lr": 0.0}, 0.3, 7, 1),
        schedule_case({"kind": "one_cycle", "pct_start": 0.25}, 0.1, 10, 3),
        schedule_case({"kind": "one_cycle", "pct_start": 0.3}, 1.0, 7, 5),
        schedule_case({"kind": "plateau", "factor": 0.5, "patience": 1, "min_lr": 0.004}, 0.1, len(losses), 1, losses),
        schedule_case({"kind": "plateau", "factor": 0.1, "patience": 0, "min_lr": 0.0}, 0.1, len(losses), 2, losses),
    ]


def write(name, cases):
    doc = {
        "generated_by": "crates/backprop/tests/golden/generate.py",
        "torch_version": torch.__version__,
        "cases": cases,
    }
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {name}: {len(cases)} cases")


if __name__ == "__main__":
    torch.use_deterministic_algorithms(True)
    write("networks.json", networks())
    write("schedules.json", schedules())
    write("training.json", training())
