"""Post-hoc calibration beside SeungjinJung/SCTL on the same synthetic logits: the class-wise loss and its
(alpha, beta) fit, the fitted temperatures of TS / CTS / ETS / PTS with each objective, and the test ECE by the
official ECE function."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from lightning_modules.metrics.calibration import expected_calibration_error
from lightning_modules.post_processing.calibrators import calibrate
from lightning_modules.post_processing.classwise_loss import ClasswiseScaledCrossEntropy
from lightning_modules.post_processing.objectives import FocalLoss, make_objective

from .loading import load_module

OFFICIAL_LOSS = {
    "nll": "cross_entropy_loss",
    "cl": "scaling_classwise_training_loss",
    "ls": "label_smoothing_loss",
    "fl": "focal_loss",
}
FITS = [("ts", "nll"), ("ts", "cl"), ("ts", "ls"), ("ts", "fl"), ("cts", "cl"), ("ets", "cl"), ("pts", "nll")]


def synthetic_logits(classes: int, n: int, seed: int, imbalance: float = 1.0):
    """Over-confident logits of a noisy classifier; with ``imbalance`` > 1 the labels are long-tailed."""
    generator = torch.Generator().manual_seed(seed)
    weights = imbalance ** (-torch.arange(classes) / max(classes - 1, 1))
    labels = torch.multinomial(weights / weights.sum(), n, replacement=True, generator=generator)
    logits = torch.randn(n, classes, generator=generator) + 2.5 * nn.functional.one_hot(labels, classes)
    return 3.0 * logits, labels


def official_modules(official: Path):
    root = official / "models"
    loss = load_module(root / "lossfunction.py", "sctl_official_lossfunction")
    scaler = load_module(root / "scaler.py", "sctl_official_scaler")
    optimizer = load_module(root / "optimizer.py", "sctl_official_optimizer")
    return loss, scaler, optimizer


def official_fit(
    official: Path, calibrator: str, objective: str, logits, labels, modules: tuple | None = None
) -> nn.Module:
    """The official ``calibrator.train`` loop, with its scaler, loss and optimizer for that pair; ``modules``:
    :func:`official_modules` loaded once (a timed fit should not include reading the official files)."""
    loss_module, scaler_module, optimizer_module = modules or official_modules(official)
    args = SimpleNamespace(n_class=logits.shape[1], norm="ND", optim="", lr=0.02, n_iter=1000)
    names = {
        "ts": "temperature_scaler",
        "cts": "class_based_temperature_scaler",
        "ets": "ensemble_temperature_scaler",
        "pts": "parameterized_temperature_scaler",
    }
    torch.manual_seed(1)  # the official calibrator's seed
    scaler = getattr(scaler_module, names[calibrator])(args)
    if calibrator == "ets":
        args.optim = "lbfgs"
    cuda = nn.Module.cuda
    nn.Module.cuda = lambda self, *a, **k: self  # the official label-smoothing loss moves itself to CUDA
    try:
        loss = getattr(loss_module, OFFICIAL_LOSS[objective])(args)
    finally:
        nn.Module.cuda = cuda
    make = getattr(optimizer_module, args.optim)
    groups = [make(scaler.t, args), make(scaler.w, args)] if calibrator == "ets" else [make(scaler, args)]
    for optimizers in groups:
        if "adam" in args.optim:
            for optimizer, epochs in optimizers:
                for _ in range(epochs):
                    optimizer.zero_grad()
                    loss(scaler(logits), labels).backward()
                    optimizer.step()
            continue
        for optimizer in optimizers:

            def closure(optimizer=optimizer):
                optimizer.zero_grad()
                value = loss(scaler(logits), labels)
                value.backward()
                return value

            optimizer.step(closure)
    return scaler


def official_ece(official: Path, logits, labels) -> float:
    utils = _official_utils(official)
    return float(utils.expected_caibration_error()(logits, labels)[0])


def _official_utils(official: Path):
    """The official ECE class (its utils module imports only torch, numpy and pickle at the top)."""
    return load_module(official / "models" / "utils.py", "sctl_official_utils")


def compare(official: Path) -> list[str]:
    lines = _loss_rows(official)
    lines += [
        "",
        "| logits | fit | official T (or w) | ours | test ECE %: official / ours (official ECE function) |",
        "|---|---|---:|---:|---:|",
    ]
    stationarity = [
        "",
        "How far each temperature fit stopped from its objective's stationary point (dL/dT on the calibration "
        "logits at the fitted T; 0 at the optimum) and how much the test ECE moves with T alone:",
        "",
        "| logits | fit | dL/dT at the official T | at ours | official ECE % at the official T +- 3e-4 |",
        "|---|---|---:|---:|---:|",
    ]
    for classes, imbalance in ((10, 1.0), (100, 10.0)):
        cal, test = (
            synthetic_logits(classes, 2000, 0, imbalance),
            synthetic_logits(classes, 2000, 1, imbalance),
        )
        name = f"C={classes}" + (f", long-tailed (rho {imbalance:g})" if imbalance > 1 else "")
        for calibrator, objective in FITS:
            theirs = official_fit(official, calibrator, objective, *cal)
            space = {"ets_space": "logit"} if calibrator == "ets" else {}
            ours = calibrate(calibrator, objective, *cal, **space)
            with torch.no_grad():
                ece = (
                    official_ece(official, theirs(test[0]), test[1]),
                    official_ece(official, ours(test[0]), test[1]),
                )
            lines.append(
                f"| {name} | {calibrator} / {objective} | {_params(theirs, calibrator, test[0])} | "
                f"{_params(ours, calibrator, test[0])} | {ece[0]:.2f} / {ece[1]:.2f} |"
            )
            if calibrator == "ts" and objective != "cl":  # cl's weights depend on the fit's history
                temperatures = float(theirs.t.detach()), float(ours.temperature.detach())
                slopes = [_slope(objective, classes, *cal, t) for t in temperatures]
                moved = [
                    official_ece(official, test[0] / (temperatures[0] + d), test[1]) for d in (-3e-4, 3e-4)
                ]
                stationarity.append(
                    f"| {name} | ts / {objective} | {slopes[0]:+.4f} | {slopes[1]:+.4f} | "
                    f"{moved[0]:.2f} / {moved[1]:.2f} |"
                )
    return lines + stationarity


def _slope(objective: str, classes: int, logits: torch.Tensor, labels: torch.Tensor, t: float) -> float:
    temperature = torch.tensor(t, requires_grad=True)
    make_objective(objective, classes)(logits / temperature, labels).backward()
    return float(temperature.grad)


def _params(scaler: nn.Module, calibrator: str, logits: torch.Tensor) -> str:
    if calibrator == "ts":
        value = scaler.t if hasattr(scaler, "t") else scaler.temperature
        return f"{float(value.detach()):.4f}"
    if calibrator == "cts":
        values = scaler.T if hasattr(scaler, "T") else scaler.temperature
        return f"mean {float(values.detach().mean()):.4f}"
    if calibrator == "ets":
        weights = scaler.w.w if hasattr(scaler, "w") else scaler.weights
        return "w " + ", ".join(f"{float(v):.3f}" for v in weights.detach())
    with torch.no_grad():  # PTS: the per-sample temperature, averaged over the test logits
        temperature = (
            scaler.temperature(logits) if hasattr(scaler, "temperature") else logits / scaler(logits)
        )
    return f"mean T {float(temperature.float().mean()):.4f}"


def _loss_rows(official: Path) -> list[str]:
    """The class-wise loss on three successive calls and its fitted (alpha, beta); the ECE function; focal."""
    loss_module, _, _ = official_modules(official)
    logits, labels = synthetic_logits(10, 1000, 2)
    theirs = loss_module.scaling_classwise_training_loss(SimpleNamespace(n_class=10, norm="ND"))
    ours = ClasswiseScaledCrossEntropy(10, "ND", "sum")
    rows = ["| quantity | official | ours |", "|---|---:|---:|"]
    for call in range(3):
        scaled = logits / (1.0 + 0.3 * call)  # three calibrations of the same logits, as in a fit's closures
        rows.append(
            f"| class-wise loss, call {call + 1} | {float(theirs(scaled, labels)):.6f} | {float(ours(scaled, labels)):.6f} |"
        )
    rows.append(
        f"| (alpha, beta) after the second call | ({theirs.alpha:.4f}, {theirs.beta:.4f}) | ({ours.alpha:.4f}, {ours.beta:.4f}) |"
    )
    focal_theirs = loss_module.focal_loss(SimpleNamespace(optim=""))(logits, labels)
    rows.append(
        f"| focal loss (gamma 3) | {float(focal_theirs):.6f} | {float(FocalLoss(3.0)(logits, labels)):.6f} |"
    )
    probs = logits.softmax(1)
    rows.append(
        f"| ECE, 15 bins (%) | {official_ece(official, logits, labels):.4f} | "
        f"{100 * float(expected_calibration_error(probs, labels)):.4f} |"
    )
    return rows
