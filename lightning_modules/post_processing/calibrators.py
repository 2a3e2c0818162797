"""Post-hoc calibrators on frozen logits, and fitting them with any objective (NLL or SCTL's class-wise loss).

Each calibrator maps logits (N, C) to calibrated logits whose softmax is the calibrated probability:

* ``ts``  temperature scaling, z / T (Guo et al. 2017), T = exp(s) so it stays positive
* ``cts`` class-based temperature scaling, z_c / T_c (may change the argmax, hence accuracy)
* ``ets`` ensemble temperature scaling (Zhang et al. 2020): log(w0 softmax(z/T) + w1 softmax(z) + w2 / C), w on
  the simplex; ``space="logit"`` is the SCTL repository's variant w0 z/T + w1 z + w2/C, which is TS in disguise
* ``pts`` parameterized temperature scaling: a per-sample T = softplus(MLP(top-10 sorted logits)) (Tomani et al.)

Each is a :class:`Calibrator` that owns its ``fit`` (as torch-uncertainty's post-processing scalers do) and is
chosen in a config by ``class_path`` or by the short name above.

Fitting follows the SCTL code: TS, CTS and ETS with full-batch LBFGS (lr 0.02, max_iter 1000; ETS fits T, then
w), PTS with Adam (lr 0.02, 1000 iterations). The objective is reset before every fit. Temperatures are
optimized in log space (the official code uses raw T, which LBFGS can push through zero into NaN on degenerate
logits); a fit that still diverges is restarted with a strong-Wolfe line search, with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Literal, Self

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize
from torch import nn

from lightning_modules.post_processing.classwise_loss import Normalization
from lightning_modules.post_processing.objectives import ObjectiveName, fitting_schedule, make_objective

CalibratorName = Literal["ts", "cts", "ets", "pts"]
CALIBRATORS: tuple[str, ...] = ("ts", "cts", "ets", "pts")


class Calibrator(nn.Module):
    """A post-hoc calibrator: ``forward`` maps logits (N, C) to calibrated logits, ``fit`` fits it on frozen ones.

    Chosen in a config by ``class_path`` (with its own ``init_args``; the class count is given when the callback
    builds it), or by its short ``name``. ``init_args()`` is what rebuilds it from a checkpoint with the class
    count. The default ``fit`` is the SCTL code's full-batch LBFGS over every parameter, one stage per (lr,
    iterations) of the schedule, restarted with a strong-Wolfe line search if it diverges.
    """

    name: ClassVar[str] = ""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def init_args(self) -> dict[str, Any]:
        """The constructor's arguments besides ``num_classes``."""
        return {}

    def fit(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        objective: nn.Module,
        iterations: int = 1000,
        schedule: list[tuple[float, int]] | None = None,
    ) -> Self:
        """Fit on frozen ``logits`` (full batch) by minimizing ``objective(self(logits), labels)``, one optimizer
        stage per (learning rate, iterations) of ``schedule`` (default: lr 0.02 for ``iterations``)."""
        logits, labels = logits.detach().float(), labels.detach().long()
        _fit_lbfgs(self, list(self.parameters()), logits, labels, objective, iterations, schedule)
        return self


class TemperatureScaler(Calibrator):
    """z / T with T = exp(s): the optimum of the official raw-T fit, but T can never step through zero."""

    name = "ts"

    def __init__(self, num_classes: int, temperatures: int = 1) -> None:
        super().__init__(num_classes)
        self.log_temperature = nn.Parameter(torch.zeros(temperatures))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature


class ClassTemperatureScaler(TemperatureScaler):
    """z_c / T_c, one temperature per class."""

    name = "cts"

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes, temperatures=num_classes)


class EnsembleTemperatureScaler(Calibrator):
    """Zhang et al.'s ETS: w0 softmax(z/T) + w1 softmax(z) + w2/C with w on the simplex, starting at TS (1, 0, 0).

    ``space="logit"`` is the SCTL repository's variant, the same mixture of logits (equivalent to TS).
    """

    name = "ets"

    def __init__(self, num_classes: int, space: Literal["prob", "logit"] = "prob") -> None:
        super().__init__(num_classes)
        if space not in ("prob", "logit"):
            raise ValueError(f"ETS space must be prob or logit, got {space!r}")
        self.space = space
        self.scaler = TemperatureScaler(num_classes)
        self.weights = nn.Parameter(torch.tensor([1.0, 0.0, 0.0]))

    def init_args(self) -> dict[str, Any]:
        return {"space": self.space}

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

    def fit(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        objective: nn.Module,
        iterations: int = 1000,
        schedule: list[tuple[float, int]] | None = None,
    ) -> Self:
        """Zhang et al.: T by plain temperature scaling first (not inside the mixture, whose uniform part caps the
        cost of confident mistakes and lets T collapse), then the mixture weights with T fixed: on the simplex
        with SLSQP as in their code, or, for the repository's logit variant, with LBFGS like its TS."""
        logits, labels = logits.detach().float(), labels.detach().long()
        self.scaler.fit(logits, labels, objective, iterations, schedule)
        if self.space == "prob":
            _fit_simplex_weights(self, logits, labels, objective, iterations)
        else:
            _fit_lbfgs(self, [self.weights], logits, labels, objective, iterations, schedule)
        return self


class ParameterizedTemperatureScaler(Calibrator):
    """A per-sample T = softplus(MLP(top-k sorted logits)) (Tomani et al.), fitted with Adam as the SCTL code does
    (its MLP initialized from seed 1 without touching the caller's random stream)."""

    name = "pts"

    def __init__(self, num_classes: int, top_k: int = 10, hidden: int = 2, layers: int = 4) -> None:
        super().__init__(num_classes)
        if num_classes < top_k:
            raise ValueError(
                f"PTS reads the top-{top_k} sorted logits and needs at least {top_k} classes, got {num_classes}"
            )
        self.top_k, self.hidden, self.layers = top_k, hidden, layers
        blocks: list[nn.Module] = [nn.Linear(top_k, hidden), nn.ReLU()]
        for _ in range(layers - 1):
            blocks += [nn.Linear(hidden, hidden), nn.ReLU()]
        blocks.append(nn.Linear(hidden, 1))
        self.mlp = nn.Sequential(*blocks)

    def init_args(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "hidden": self.hidden, "layers": self.layers}

    def temperature(self, logits: torch.Tensor) -> torch.Tensor:
        top = logits.detach().sort(dim=1, descending=True).values[:, : self.top_k]
        return F.softplus(self.mlp(top)) + 1e-3  # positive, so the argmax is kept

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature(logits)

    def fit(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        objective: nn.Module,
        iterations: int = 1000,
        schedule: list[tuple[float, int]] | None = None,
    ) -> Self:
        logits, labels = logits.detach().float(), labels.detach().long()
        _reset(objective)
        with torch.random.fork_rng(devices=[]):  # the SCTL code's seed, without touching the caller's RNG
            torch.manual_seed(1)
            for module in self.mlp:
                if isinstance(module, nn.Linear):
                    module.reset_parameters()
        for lr, steps in schedule or [(0.02, iterations)]:
            optimizer = torch.optim.Adam(self.parameters(), lr=lr)
            for _ in range(steps):
                optimizer.zero_grad()
                objective(self(logits), labels).backward()
                optimizer.step()
        return self


CALIBRATOR_CLASSES: dict[str, type[Calibrator]] = {
    c.name: c
    for c in (
        TemperatureScaler,
        ClassTemperatureScaler,
        EnsembleTemperatureScaler,
        ParameterizedTemperatureScaler,
    )
}
# what a config may give: a short name, or a class_path whose init_args leave out the class count
CalibratorChoice = CalibratorName | Callable[[int], Calibrator]


def make_calibrator(
    choice: CalibratorChoice, num_classes: int, ets_space: Literal["prob", "logit"] = "prob"
) -> Calibrator:
    """A fresh calibrator for ``num_classes`` classes: from its short name (``ets_space`` for ``ets``) or from a
    config's class_path (a callable taking the class count)."""
    if callable(choice):
        calibrator = choice(num_classes)
        if not isinstance(calibrator, Calibrator):
            raise TypeError(f"calibrator: {choice!r} made a {type(calibrator).__name__}, not a Calibrator")
        return calibrator
    if choice not in CALIBRATOR_CLASSES:
        raise ValueError(
            f"calibrator must be one of {CALIBRATORS} or a Calibrator class_path, got {choice!r}"
        )
    if choice == "ets":
        return EnsembleTemperatureScaler(num_classes, ets_space)
    return CALIBRATOR_CLASSES[choice](num_classes)


def calibrate(
    choice: CalibratorChoice,
    objective: ObjectiveName,
    logits: torch.Tensor,
    labels: torch.Tensor,
    ets_space: Literal["prob", "logit"] = "prob",
    norm: Normalization = "ND",
    reduction: str = "sum",
    iterations: int = 1000,
) -> Calibrator:
    """A calibrator (a short name or a class_path's callable) fitted with ``objective`` on ``logits`` as the
    official code fits that pair (a fresh objective, its optimizer schedule); safe inside ``test``, which runs in
    inference mode."""
    with torch.inference_mode(False), torch.enable_grad():
        calibrator = make_calibrator(choice, logits.shape[1], ets_space).to(logits.device)
        loss = make_objective(objective, logits.shape[1], norm, reduction)
        schedule = fitting_schedule(objective, iterations)
        return calibrator.fit(logits.clone(), labels.clone(), loss, iterations, schedule)


def _fit_lbfgs(
    calibrator: Calibrator,
    parameters: list[torch.Tensor],
    logits: torch.Tensor,
    labels: torch.Tensor,
    objective: nn.Module,
    iterations: int,
    schedule: list[tuple[float, int]] | None,
) -> None:
    """LBFGS over ``parameters`` per schedule stage (lr 0.02, no line search, as the SCTL code); the official
    settings can step a temperature through zero on degenerate logits, so a non-finite result restarts from the
    start with a strong-Wolfe line search instead of returning NaN."""
    start = [p.detach().clone() for p in parameters]
    try:
        for lr, steps in schedule or [(0.02, iterations)]:
            loss = _lbfgs(calibrator, parameters, logits, labels, objective, steps, line_search=None, lr=lr)
    except RuntimeError:  # LBFGS overflowed its step
        loss = torch.tensor(float("nan"))
    if _finite(loss, parameters):
        return
    warnings.warn(
        f"{type(calibrator).__name__}: LBFGS diverged; refitting with a strong-Wolfe line search",
        stacklevel=3,
    )
    with torch.no_grad():
        for parameter, value in zip(parameters, start, strict=True):
            parameter.copy_(value)
    loss = _lbfgs(calibrator, parameters, logits, labels, objective, iterations, line_search="strong_wolfe")
    if not _finite(loss, parameters):
        raise FloatingPointError(
            f"{type(calibrator).__name__} could not be fitted: the objective is not finite"
        )


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
