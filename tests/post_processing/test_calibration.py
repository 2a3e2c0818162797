"""Calibration: metrics against torchmetrics, the class-wise objective by hand, calibrators, the callback."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassCalibrationError

from lightning_modules.metrics.calibration import (
    adaptive_calibration_error,
    calibration_report,
    classwise_calibration_error,
    expected_calibration_error,
)
from lightning_modules.outputs.pictures import reliability_diagram
from lightning_modules.post_processing.calibrators import CALIBRATORS, make_calibrator
from lightning_modules.post_processing.classwise_loss import (
    ClasswiseScaledCrossEntropy,
    fit_alpha_beta,
    normalize,
)


def random_logits(n: int = 2000, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=generator)
    logits = torch.randn(n, classes, generator=generator) + 2.0 * F.one_hot(labels, classes)
    return logits * 2.5, labels  # over-confident


@pytest.mark.parametrize("norm", ["l1", "max"])
def test_ece_and_mce_equal_torchmetrics(norm: str) -> None:
    logits, labels = random_logits()
    reference = MulticlassCalibrationError(num_classes=10, n_bins=15, norm=norm)(logits.softmax(1), labels)
    ours = expected_calibration_error(logits.softmax(1), labels, 15, norm=norm)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-6)


def test_adaptive_and_classwise_ece_hand_cases() -> None:
    # two samples, both predicted class 0 with confidence 0.9, one right: one bin, gap |0.9 - 0.5|
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    labels = torch.tensor([0, 1])
    assert adaptive_calibration_error(probs, labels, n_bins=2).item() == pytest.approx(0.4)
    # class 0 column: both 0.9, frequency 0.5 -> 0.4; class 1 column: both 0.1, frequency 0.5 -> 0.4
    assert classwise_calibration_error(probs, labels, n_bins=15).item() == pytest.approx(0.4)
    report = calibration_report(torch.log(probs), labels)
    assert report["acc"] == 0.5 and report["brier"] == pytest.approx(
        ((0.1**2 + 0.1**2) + (0.9**2 + 0.9**2)) / 2
    )


def test_classwise_objective_on_a_hand_computed_three_class_case() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 0])
    ce = F.cross_entropy(logits, labels, reduction="none")
    class_losses = torch.stack([ce[[0, 3]].mean(), ce[1], ce[2]])
    z = (class_losses - class_losses.mean()) / class_losses.std()
    weights = 1.5 * torch.sigmoid(z / 1.0) - 0.75 + 1.0  # alpha 1, beta 1.5 before the fit
    loss = ClasswiseScaledCrossEntropy(3, norm="ND")
    assert loss(logits, labels).item() == pytest.approx((weights * class_losses).sum().item(), rel=1e-6)
    assert loss.calls == 1 and (loss.alpha, loss.beta) == (1.0, 1.5)
    # worse-than-average classes get w > 1, better ones w < 1, and w = 1 at the mean
    assert weights[2] > 1 > weights[0]
    mean = ClasswiseScaledCrossEntropy(3, norm="ND", reduction="mean")
    assert mean(logits, labels).item() == pytest.approx((weights * class_losses).mean().item(), rel=1e-6)


def test_normalizations_and_alpha_beta_bounds() -> None:
    losses = torch.tensor([1.0, 2.0, 4.0])
    assert normalize(losses, "MM").tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert normalize(losses, "CM").tolist() == pytest.approx(
        [(1 - 7 / 3) / 3, (2 - 7 / 3) / 3, (4 - 7 / 3) / 3]
    )
    assert torch.isfinite(normalize(torch.ones(3), "ND")).all()  # zero spread does not divide by zero
    alpha, beta = fit_alpha_beta(losses, losses * 0.9, normalize(losses * 0.9, "ND"), 100, (1.0, 1.5))
    assert 0.1 <= alpha <= math.log(100) / 2 and 1.5 <= beta <= 2.0


def test_alpha_beta_are_fitted_at_the_second_call_and_reset_per_fit() -> None:
    logits, labels = random_logits(300, 10)
    loss = ClasswiseScaledCrossEntropy(10)
    loss(logits, labels)
    loss(logits * 0.8, labels)
    fitted = (loss.alpha, loss.beta)
    loss(logits * 0.5, labels)
    assert (loss.alpha, loss.beta) == fitted and loss.calls == 3
    loss.reset()
    assert loss.calls == 0 and (loss.alpha, loss.beta) == (1.0, 1.5) and loss.first_losses is None


def test_an_empty_class_is_left_out_without_nan() -> None:
    logits, labels = random_logits(200, 5)
    labels[labels == 3] = 0  # class 3 has no sample
    loss = ClasswiseScaledCrossEntropy(5)
    with pytest.warns(UserWarning, match=r"classes \[3\] have no sample"):
        value = loss(logits, labels)
    assert torch.isfinite(value)
    calibrator = make_calibrator("cts", 5).fit(logits, labels, ClasswiseScaledCrossEntropy(5), iterations=50)
    assert torch.isfinite(calibrator.temperature).all()


@pytest.mark.parametrize("objective", ["nll", "cl"])
def test_temperature_scaling_recovers_a_known_temperature(objective: str) -> None:
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(5000, 10, generator=generator) * 2
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    observed = true_logits * 3.0  # a network over-confident by T = 3
    loss = torch.nn.CrossEntropyLoss() if objective == "nll" else ClasswiseScaledCrossEntropy(10)
    calibrator = make_calibrator("ts", 10).fit(observed, labels, loss)
    tolerance = 0.1 if objective == "nll" else 0.35  # the class-wise objective reweights, so T moves a little
    assert calibrator.temperature.item() == pytest.approx(3.0, abs=tolerance)


@pytest.mark.parametrize("name", ["ts", "ets", "pts"])
def test_argmax_preserving_calibrators_keep_accuracy(name: str) -> None:
    logits, labels = random_logits()
    calibrator = make_calibrator(name, 10).fit(logits, labels, torch.nn.CrossEntropyLoss(), iterations=100)
    with torch.no_grad():
        assert torch.equal(calibrator(logits).argmax(1), logits.argmax(1))
        assert (
            calibration_report(calibrator(logits), labels)["ece"] < calibration_report(logits, labels)["ece"]
        )


def test_every_calibrator_lowers_nll_of_overconfident_logits() -> None:
    logits, labels = random_logits(1000)
    before = F.cross_entropy(logits, labels).item()
    for name in CALIBRATORS:
        calibrator = make_calibrator(name, 10).fit(
            logits, labels, torch.nn.CrossEntropyLoss(), iterations=100
        )
        with torch.no_grad():
            assert F.cross_entropy(calibrator(logits), labels).item() < before, name


def test_ets_fits_ts_first_and_never_does_worse_than_ts_on_its_own_split() -> None:
    """Zhang et al.'s order: T by plain TS, then the weights. Fitting T inside the mixture let the uniform part
    hide confident mistakes and T collapse towards 0 (a bug this guards against)."""
    logits, labels = random_logits(300)
    nll = torch.nn.CrossEntropyLoss()
    ts = make_calibrator("ts", 10).fit(logits, labels, nll)
    ets = make_calibrator("ets", 10).fit(logits, labels, nll)
    assert ets.scaler.temperature.item() == pytest.approx(ts.temperature.item(), rel=1e-4)
    with torch.no_grad():
        assert nll(ets(logits), labels).item() <= nll(ts(logits), labels).item() + 1e-4


def test_ets_logit_space_is_the_repository_variant_and_pts_needs_ten_classes() -> None:
    calibrator = make_calibrator("ets", 4, ets_space="logit")
    logits = torch.randn(3, 4)
    assert torch.allclose(calibrator(logits), logits + 0.0)  # w = (1, 0, 0), T = 1 at the start
    with pytest.raises(ValueError, match="at least 10 classes"):
        make_calibrator("pts", 5)


def test_pts_fit_leaves_the_global_rng_alone() -> None:
    logits, labels = random_logits(100)
    calibrator = make_calibrator("pts", 10)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    calibrator.fit(logits, labels, torch.nn.CrossEntropyLoss(), iterations=5)
    assert torch.equal(torch.rand(1), expected)


def test_reliability_diagram_bars_have_the_bin_accuracy_as_height() -> None:
    confidences = torch.tensor([0.95, 0.95, 0.95, 0.95])
    correct = torch.tensor([1, 1, 1, 0])  # accuracy 0.75 in the last bin
    picture = reliability_diagram(confidences, correct, n_bins=15, size=150)
    column = picture[:, :, 14 * 10 + 5]  # the middle of the last bar
    blue = (column == torch.tensor([0.2, 0.4, 0.9])[:, None]).all(dim=0)
    red = (column == torch.tensor([0.9, 0.2, 0.2])[:, None]).all(dim=0)
    assert blue.sum().item() == round(0.75 * 150)  # bar height = accuracy
    assert red.sum().item() == round(0.95 * 150) - round(0.75 * 150)  # gap up to the confidence
    empty = picture[:, :, 5]  # the first bin has no sample: white, but for the grey diagonal pixel
    assert ((empty == 1) | (empty == 0.5)).all() and (empty == 0.5).all(dim=0).sum() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reliability_diagram(torch.rand(10), torch.ones(10))


def test_the_paper_s_other_objectives_are_label_smoothing_and_focal_loss_with_their_schedule() -> None:
    from lightning_modules.post_processing.objectives import FocalLoss, fitting_schedule, make_objective

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    labels = torch.tensor([0, 2])
    p = logits.softmax(1)[torch.arange(2), labels]  # hand case: -(1 - p)^3 log p, averaged
    expected = (-((1 - p) ** 3) * p.log()).mean()
    assert torch.allclose(FocalLoss(3.0)(logits, labels), expected)
    smooth = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.05)
    assert torch.allclose(make_objective("ls", 3)(logits, labels), smooth)
    assert fitting_schedule("ls") == fitting_schedule("fl") == [(0.005, 200), (0.003, 400), (0.001, 400)]
    assert fitting_schedule("nll") == fitting_schedule("cl") == [(0.02, 1000)]
    assert fitting_schedule("fl", iterations=50) == [(0.005, 10), (0.003, 20), (0.001, 20)]  # shares kept
    with pytest.raises(ValueError, match="calibration objective must be one of"):
        make_objective("hinge", 3)


def test_focal_loss_fits_a_lower_temperature_than_nll_on_over_confident_logits() -> None:
    """Focal loss weighs down confident samples, so it leaves an over-confident model less sharp: its fitted
    temperature is above the NLL one's (a known property; the SCTL paper's FL columns)."""
    from lightning_modules.post_processing.calibrators import calibrate

    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (2000,), generator=generator)
    logits = torch.randn(2000, 10, generator=generator) + 3.0 * torch.nn.functional.one_hot(labels, 10)
    logits = 4.0 * logits  # over-confident: the NLL temperature is above 1
    t_nll = float(calibrate("ts", "nll", logits, labels).temperature.detach())
    t_fl = float(calibrate("ts", "fl", logits, labels).temperature.detach())
    assert t_nll > 1.0 and t_fl > t_nll + 0.5
