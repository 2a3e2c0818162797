"""Post-hoc calibrators on frozen logits, and fitting them with any objective (NLL or SCTL's class-wise loss).

Each calibrator maps logits (N, C) to calibrated logits whose softmax is the calibrated probability:

* ``ts``  temperature scaling, z / T (Guo et al. 2017), T = exp(s) so it stays positive
* ``cts`` class-based temperature scaling, z_c / T_c (may change the argmax, hence accuracy)
* ``ets`` ensemble temperature scaling (Zhang et al. 2020): log(w0 softmax(z/T) + w1 softmax(z) + w2 / C), w on
  the simplex; ``space="logit"`` is the SCTL repository's variant w0 z/T + w1 z + w2/C, which is TS in disguise
* ``pts`` parameterized temperature scaling: a per-sample T = softplus(MLP(top-10 sorted logits)) (Tomani et al.)

Fitting follows the SCTL code: TS, CTS and ETS with full-batch LBFGS (lr 0.02, max_iter 1000; ETS fits T, then
w), PTS with Adam (lr 0.02, 1000 iterations). The objective is reset before every fit. Temperatures are
optimized in log space (the official code uses raw T, which LBFGS can push through zero into NaN on degenerate
logits); a fit that still diverges is restarted with a strong-Wolfe line search, with a warning.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize
from torch import nn

from lightning_modules.post_processing.classwise_loss import Normalization
from lightning_modules.post_processing.objectives import ObjectiveName, fitting_schedule, make_objective

CalibratorName = Literal["ts", "cts", "ets", "pts"]
CALIBRATORS: tuple[str, ...] = ("ts", "cts", "ets", "pts")


class TemperatureScaler(nn.Module):
    """z / T with T = exp(s): the optimum of the official raw-T fit, but T can never step through zero."""

    def __init__(self, num_classes: int, temperatures: int = 1) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.log_temperature = nn.Parameter(torch.zeros(temperatures))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature


class ClassTemperatureScaler(TemperatureScaler):
    """z_c / T_c, one temperature per class."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes, temperatures=num_classes)


class EnsembleTemperatureScaler(nn.Module):
    """Zhang et al.'s ETS: w0 softmax(z/T) + w1 softmax(z) + w2/C with w on the simplex, starting at TS (1, 0, 0).

    ``space="logit"`` is the SCTL repository's variant, the same mixture of logits (equivalent to TS).
    """

    def __init__(self, num_classes: int, space: Literal["prob", "logit"] = "prob") -> None:
        super().__init__()
        if space not in ("prob", "logit"):
            raise ValueError(f"ETS space must be prob or logit, got {space!r}")
        self.num_classes, self.space = num_classes, space
        self.scaler = TemperatureScaler(num_classes)
        self.weights = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))

    def mixture_weights(self) -> torch.Tensor:
        return self.weights

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        w = self.weights
        if self.space == "logit":
            return w[0] * self.scaler(logits) + w[1] * logits + w[2] / self.num_classes
        mixed = (
            w[0] * self.scaler(logits).softmax(dim=1) + w[1] * logits.softmax(dim=1) + w[2] / self.num_classes
        )
        return mixed.clamp_min(1e-12).log()


class ParameterizedTemperatureScaler(nn.Module):
    def __init__(self, num_classes: int, top_k: int = 10, hidden: int = 2, layers: int = 4) -> None:
        super().__init__()
        if num_classes < top_k:
            raise ValueError(
                f"PTS reads the top-{top_k} sorted logits and needs at least {top_k} classes, got {num_classes}"
            )
        self.num_classes, self.top_k = num_classes, top_k
        blocks: list[nn.Module] = [nn.Linear(top_k, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            blocks += [nn.Linear(hidden, hidden), nn.ReLU()]
        blocks.append(nn.Linear(hidden, 1))
        self.mlp = nn.Sequential(*blocks)

    def temperature(self, logits: torch.Tensor) -> torch.Tensor:
        top = logits.detach().sort(dim=1, descending=True).values[:, : self.top_k]
        return F.softplus(self.mlp(top)) + 1e-3  # positive, so the argmax is kept

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature(logits)


def make_calibrator(
    name: CalibratorName, num_classes: int, ets_space: Literal["prob", "logit"] = "prob"
) -> nn.Module:
    if name == "ts":
        return TemperatureScaler(num_classes)
    if name == "cts":
        return ClassTemperatureScaler(num_classes)
    if name == "ets":
        return EnsembleTemperatureScaler(num_classes, ets_space)
    if name == "pts":
        return ParameterizedTemperatureScaler(num_classes)
    raise ValueError(f"calibrator must be one of {CALIBRATORS}, got {name!r}")


def calibrate(
    name: CalibratorName,
    objective: ObjectiveName,
    logits: torch.Tensor,
    labels: torch.Tensor,
    ets_space: Literal["prob", "logit"] = "prob",
    norm: Normalization = "ND",
    reduction: str = "sum",
    iterations: int = 1000,
) -> nn.Module:
    """A ``name`` calibrator fitted with ``objective`` on ``logits`` as the official code fits that pair (a fresh
    objective, its optimizer schedule); safe inside ``test``, which runs in inference mode."""
    with torch.inference_mode(False), torch.enable_grad():
        calibrator = make_calibrator(name, logits.shape[1], ets_space).to(logits.device)
        loss = make_objective(objective, logits.shape[1], norm, reduction)
        schedule = fitting_schedule(objective, iterations)
        return fit_calibrator(calibrator, logits.clone(), labels.clone(), loss, iterations, schedule)


def fit_calibrator(
    calibrator: nn.Module,
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: nn.Module,
    iterations: int = 1000,
    schedule: list[tuple[float, int]] | None = None,
) -> nn.Module:
    """Fit ``calibrator`` on frozen ``logits`` (full batch) by minimizing ``objective(calibrated, labels)``, one
    optimizer stage per (learning rate, iterations) of ``schedule`` (default: lr 0.02 for ``iterations``)."""
    logits, labels = logits.detach().float(), labels.detach().long()
    schedule = schedule or [(0.02, iterations)]
    if isinstance(calibrator, ParameterizedTemperatureScaler):
        _reset(objective)
        with torch.random.fork_rng(devices=[]):  # the SCTL code's seed, without touching the caller's RNG
            torch.manual_seed(1)
            for module in calibrator.mlp:
                if isinstance(module, nn.Linear):
                    module.reset_parameters()
        for lr, steps in schedule:
            optimizer = torch.optim.Adam(calibrator.parameters(), lr=lr)
            for _ in range(steps):
                optimizer.zero_grad()
                objective(calibrator(logits), labels).backward()
                optimizer.step()
        return calibrator
    if isinstance(calibrator, EnsembleTemperatureScaler):
        # Zhang et al.: T by plain temperature scaling first (not inside the mixture, whose uniform part caps the
        # cost of confident mistakes and lets T collapse), then the mixture weights with T fixed: on the simplex
        # with SLSQP as in their code, or, for the repository's logit variant, with LBFGS like its TS
        fit_calibrator(calibrator.scaler, logits, labels, objective, iterations, schedule)
        if calibrator.space == "prob":
            _fit_simplex_weights(calibrator, logits, labels, objective, iterations)
            return calibrator
        stages = [(calibrator, [calibrator.weights])]
    else:
        stages = [(calibrator, list(calibrator.parameters()))]
    for model, parameters in stages:
        start = [p.detach().clone() for p in parameters]
        try:
            for lr, steps in schedule:
                loss = _lbfgs(model, parameters, logits, labels, objective, steps, line_search=None, lr=lr)
        except RuntimeError:  # LBFGS overflowed its step
            loss = torch.tensor(float("nan"))
        if not _finite(loss, parameters):
            # the official settings (lr 0.02, no line search) can step a temperature through zero on
            # degenerate logits; restart this stage with a line search instead of returning NaN
            warnings.warn(
                f"{type(calibrator).__name__}: LBFGS diverged; refitting with a strong-Wolfe line search",
                stacklevel=2,
            )
            with torch.no_grad():
                for parameter, value in zip(parameters, start, strict=True):
                    parameter.copy_(value)
            loss = _lbfgs(
                model, parameters, logits, labels, objective, iterations, line_search="strong_wolfe"
            )
            if not _finite(loss, parameters):
                raise FloatingPointError(
                    f"{type(calibrator).__name__} could not be fitted: the objective is not finite"
                )
    return calibrator


def _fit_simplex_weights(
    calibrator: EnsembleTemperatureScaler,
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: nn.Module,
    iterations: int,
) -> None:
    """SLSQP over w >= 0, sum w = 1, from (1, 0, 0); the objective and its gradient come from torch."""
    _reset(objective)

    def value_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        with torch.no_grad():
            calibrator.weights.copy_(torch.as_tensor(w, dtype=calibrator.weights.dtype))
        calibrator.weights.grad = None
        loss = objective(calibrator(logits), labels)
        loss.backward()
        return float(loss.detach()), calibrator.weights.grad.double().cpu().numpy()

    result = optimize.minimize(
        value_and_grad,
        np.array([1.0, 0.0, 0.0]),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * 3,
        constraints={"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(3)},
        options={"maxiter": iterations},
    )
    with torch.no_grad():
        calibrator.weights.copy_(
            torch.as_tensor(np.clip(result.x, 0.0, 1.0) / np.clip(result.x, 0.0, 1.0).sum())
        )
    calibrator.weights.grad = None


def _lbfgs(
    calibrator: nn.Module,
    parameters: list[torch.Tensor],
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: nn.Module,
    iterations: int,
    line_search: str | None,
    lr: float = 0.02,
) -> torch.Tensor:
    _reset(objective)
    optimizer = torch.optim.LBFGS(
        parameters, lr=lr if line_search is None else 1.0, max_iter=iterations, line_search_fn=line_search
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = objective(calibrator(logits), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return objective(calibrator(logits), labels)


def _finite(loss: torch.Tensor, parameters: list[torch.Tensor]) -> bool:
    return bool(torch.isfinite(loss)) and all(bool(torch.isfinite(p).all()) for p in parameters)


def _reset(objective: nn.Module) -> None:
    if hasattr(objective, "reset"):
        objective.reset()
