"""K-image mixing: labels are the visible pixel shares, stick-breaking, K = 2 against timm, the callback."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from timm.data import Mixup

from callbacks.mixing import KImageMixing
from lightning_modules.components.mixing import (
    box_layers,
    dirichlet_proportions,
    k_image_mix,
    nested_boxes,
    stick_breaking,
)
from tests.conftest import CONFIGS
from tests.helpers import predictions_file


def tagged_batch(batch: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Image b is the constant b + 1 (every pixel says where it came from); its label is b."""
    images = (
        (torch.arange(batch, dtype=torch.float32) + 1)
        .view(batch, 1, 1, 1)
        .expand(batch, 3, size, size)
        .clone()
    )
    return images, torch.arange(batch)


@pytest.mark.parametrize("strategy", ["gather", "boxes"])
@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("batch", [7, 8])  # odd batch sizes work too
def test_cutmix_labels_are_the_visible_pixel_shares(k: int, batch: int, strategy: str) -> None:
    images, labels = tagged_batch(batch)
    generator = torch.Generator().manual_seed(k * 10 + batch)
    mixed, targets = k_image_mix(
        images, labels, batch, k, alpha=1.0, mode="cutmix", generator=generator, strategy=strategy
    )
    assert torch.allclose(targets.sum(dim=1), torch.ones(batch))
    for b in range(batch):
        counts = torch.stack([(mixed[b, 0] == c + 1).sum() for c in range(batch)]).float() / (16 * 16)
        assert torch.allclose(targets[b], counts, atol=1e-6), b  # exact: counted pixel by pixel


def test_boxes_are_nested_and_the_stick_breaking_reproduces_phi() -> None:
    generator = torch.Generator().manual_seed(0)
    phi = dirichlet_proportions(500, 5, 0.7, generator)
    v = stick_breaking(phi)
    rebuilt = torch.stack([v[:, k] * torch.prod(1 - v[:, :k], dim=1) for k in range(5)], dim=1)
    assert torch.allclose(rebuilt, phi, atol=1e-8)
    boxes = nested_boxes(v, 32, 24, generator)
    outer = torch.tensor([0, 0, 32, 24])
    for k in range(4):
        inner = boxes[:, k]
        previous = boxes[:, k - 1] if k else outer.expand_as(inner)
        assert (inner[:, :2] >= previous[:, :2]).all() and (inner[:, 2:] <= previous[:, 2:]).all()


@pytest.mark.parametrize("placement", ["inside", "clipped"])
def test_the_layer_map_is_the_box_by_box_paste(placement: str) -> None:
    """The layer map that the one-gather composition reads holds, at every pixel, the box the official box-by-box
    slice paste leaves on top there, for nested and for clipped boxes."""
    generator = torch.Generator().manual_seed(3)
    k = 5 if placement == "inside" else 2
    v = stick_breaking(dirichlet_proportions(64, k, 1.0, generator))
    boxes = nested_boxes(v, 20, 12, generator, placement)
    pasted = torch.zeros(64, 20, 12, dtype=torch.uint8)
    for b in range(64):
        for index, (top, left, bottom, right) in enumerate(boxes[b].tolist()):
            pasted[b, top:bottom, left:right] = index + 1
    assert torch.equal(box_layers(boxes, 20, 12), pasted)


@pytest.mark.parametrize("placement, k", [("inside", 2), ("inside", 5), ("clipped", 2)])
def test_both_compositions_give_the_same_images_and_auto_copies_boxes_only_for_large_cpu_images(
    placement: str, k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying the boxes and the one gather are two ways to the same pixels for the same draw; ``auto`` takes the
    box copy on a CPU from PASTE_BOXES_FROM_PIXELS up (where it is faster) and the gather below."""
    from lightning_modules.components import mixing

    for size in (16, 72):
        images, labels = torch.rand(9, 3, size, size), torch.arange(9)
        mixed = {
            strategy: k_image_mix(
                images,
                labels,
                9,
                k,
                1.0,
                "cutmix",
                torch.Generator().manual_seed(k),
                placement,
                strategy=strategy,
            )
            for strategy in ("gather", "boxes", "auto")
        }
        assert torch.equal(mixed["gather"][0], mixed["boxes"][0]) and not torch.equal(
            mixed["gather"][0], images
        )
        assert torch.equal(mixed["gather"][1], mixed["boxes"][1]) and torch.equal(
            mixed["auto"][0], mixed["boxes"][0]
        )
    chosen = []
    for name in ("paste_boxes", "gather_boxes"):
        original = getattr(mixing, name)
        monkeypatch.setattr(mixing, name, lambda *a, _n=name, _o=original: chosen.append(_n) or _o(*a))
    for size in (16, 64):
        k_image_mix(torch.rand(4, 3, size, size), torch.arange(4), 4, k, 1.0, "cutmix", placement=placement)
    assert chosen == ["gather_boxes", "paste_boxes"]  # 16 x 16 < 64 x 64 <= 64 x 64


def test_the_memory_layout_does_not_change_the_mix() -> None:
    images, labels = tagged_batch(64, size=20)
    mixed = k_image_mix(images, labels, 64, 3, 1.0, "cutmix", torch.Generator().manual_seed(0))[0]
    last = k_image_mix(
        images.contiguous(memory_format=torch.channels_last),
        labels,
        64,
        3,
        1.0,
        "cutmix",
        torch.Generator().manual_seed(0),
    )[0]
    assert torch.equal(mixed, last)  # the memory layout does not change the mix


def test_mixup_weights_are_phi_and_images_their_weighted_sum() -> None:
    images, labels = tagged_batch(6)
    mixed, targets, partners, weights = k_image_mix(
        images, labels, 6, 3, 0.5, "mixup", torch.Generator().manual_seed(1), return_parts=True
    )
    expected = (weights * (partners.float() + 1)).sum(dim=1)
    assert torch.allclose(mixed[:, 0, 0, 0], expected, atol=1e-5)
    assert torch.allclose(targets.sum(dim=1), torch.ones(6)) and (partners[:, 0] == torch.arange(6)).all()


def test_k1_leaves_the_batch_unchanged() -> None:
    images, labels = tagged_batch(4)
    mixed, targets = k_image_mix(images, labels, 4, 1, 1.0, "cutmix")
    assert torch.equal(mixed, images) and torch.equal(targets, torch.eye(4))


class FakeModule:
    num_classes = 4


def test_callback_with_prob_zero_writes_one_hot_targets_and_keeps_images() -> None:
    images, labels = tagged_batch(4)
    batch = {"image": images.clone(), "label": labels}
    KImageMixing(k=3, prob=0.0, label_smoothing=0.1).on_train_batch_start(None, FakeModule(), batch, 0)
    assert torch.equal(batch["image"], images)
    assert torch.allclose(batch["target"], torch.eye(4) * 0.9 + 0.025)


def lambdas_ours(mode: str, alpha: float, n: int) -> np.ndarray:
    images, labels = tagged_batch(n, size=32)
    placement = "clipped" if mode == "cutmix" else "inside"
    *_, weights = k_image_mix(
        images, labels, n, 2, alpha, mode, torch.Generator().manual_seed(3), placement, True
    )
    return weights[:, 0].numpy()


def lambdas_timm(mode: str, alpha: float, n: int) -> np.ndarray:
    np.random.seed(0)
    options = (
        {"mixup_alpha": alpha, "cutmix_alpha": 0.0}
        if mode == "mixup"
        else {"mixup_alpha": 0.0, "cutmix_alpha": alpha}
    )
    mixer = Mixup(**options, mode="elem", correct_lam=True, num_classes=n, label_smoothing=0.0)
    images = torch.zeros(n, 3, 32, 32)
    return np.asarray(mixer._mix_elem(images), dtype=np.float64).ravel()


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_k2_matches_timm_mixup_and_cutmix_distributions(mode: str, alpha: float) -> None:
    ours, theirs = lambdas_ours(mode, alpha, 4000), lambdas_timm(mode, alpha, 4000)
    statistic, p_value = ks_2samp(ours, theirs)
    assert p_value > 0.001, f"{mode} alpha {alpha}: KS {statistic:.3f}"
    # and a different alpha is told apart, so the check has power
    assert ks_2samp(ours, lambdas_timm(mode, 4 * alpha, 4000)).pvalue < 1e-6


def test_mixing_trains_a_classifier_and_predict_writes_uncertainty(run_cli) -> None:
    config = str(CONFIGS / "dcutmix_cifar100.yaml")
    fit = run_cli("fit", "--config", config, "--model.init_args.backbone", "cifar_resnet20")
    assert torch.isfinite(fit.trainer.callback_metrics["train/loss"])
    predict = run_cli(
        "predict", "--config", config, "--model.init_args.backbone", "cifar_resnet20", "--ckpt_path", "last"
    )
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"mix_uncertainty", "mix_confidence_mean", "mix_confidence_var", "label"} <= set(rows[0])
    assert all(float(r["mix_uncertainty"]) >= 0 for r in rows)


def test_mixing_a_binary_detector_with_soft_targets(run_cli) -> None:
    cli = run_cli("fit", "--config", str(CONFIGS / "bihpf_dcutmix.yaml"), "--trainer.callbacks.prob", "1.0")
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_a_binary_detector_s_loss_reads_the_soft_target_when_mixing_wrote_one() -> None:
    """BCE against the fake share of the mix (the target's last column), not against the anchor's label."""
    import torch.nn.functional as F

    from lightning_modules.routines.binary_detection import BinaryDetectionRoutine

    logits = torch.tensor([0.3, -1.2, 2.0])
    labels = torch.tensor([1, 0, 1])
    target = torch.tensor([[0.25, 0.75], [0.6, 0.4], [0.0, 1.0]])  # (real share, fake share) per mixed image
    routine = BinaryDetectionRoutine()
    soft = routine.loss(logits, {"label": labels, "target": target})
    assert soft.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target[:, 1]).item())
    hard = routine.loss(logits, {"label": labels})
    assert hard.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, labels.float()).item())
    assert abs(soft.item() - hard.item()) > 0.05
