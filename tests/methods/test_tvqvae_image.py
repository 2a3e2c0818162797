"""TVQ-VAE image pieces (issue 14, in progress): the image VQ-VAE's code maps, bags of codes, the topic model's
code-map front end, and the gated PixelCNN prior's causality and sampling."""

from __future__ import annotations

import itertools

import torch

from lightning_modules.tvqvae.image_networks import CodeMapFront, GatedPixelCNN, ImageVQVAE, code_bag
from lightning_modules.tvqvae.networks import ProdLDA


def test_a_32_pixel_image_is_an_8_by_8_code_map_and_its_bag_counts_64_codes() -> None:
    torch.manual_seed(0)
    vqvae = ImageVQVAE(dim=32, num_codes=20)
    out = vqvae(torch.rand(3, 3, 32, 32) * 2 - 1)
    assert out["codes"].shape == (3, 8, 8) and out["reconstruction"].shape == (3, 3, 32, 32)
    assert out["reconstruction"].abs().max() <= 1 and out["vq_loss"] > 0
    bags = code_bag(out["codes"], 20)
    assert bags.shape == (3, 20) and (bags.sum(1) == 64).all()
    for image in range(3):  # each count is that code's number of positions
        assert torch.equal(bags[image], torch.bincount(out["codes"][image].flatten(), minlength=20).float())
    assert vqvae.eval().decode(out["codes"]).shape == (3, 3, 32, 32)


def test_the_topic_model_reads_a_code_map_through_its_front_end() -> None:
    front = CodeMapFront(num_codes=20, side=8, width=100)
    model = ProdLDA(bag_size=20, num_topics=4, front=front)
    codes = torch.randint(0, 20, (5, 8, 8))
    out = model(codes)
    assert out["theta"].shape == (5, 4) and torch.allclose(out["theta"].sum(1), torch.ones(5))
    assert out["distribution"].shape == (5, 20)


def test_pixelcnn_positions_depend_only_on_earlier_ones() -> None:
    """Perturb each code in turn: no logit at or before it (raster order) changes, and the position right below
    it does change (so the masks do not hide too much either)."""
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=16, dim=8, layers=4, condition_dim=5).eval()
    codes, condition = torch.randint(0, 16, (1, 6, 6)), torch.randn(1, 5)
    base = prior(codes, condition)
    for i, j in itertools.product(range(6), range(6)):
        perturbed = codes.clone()
        perturbed[0, i, j] = (perturbed[0, i, j] + 1) % 16
        changed = (prior(perturbed, condition) - base).abs().sum(1)[0] > 1e-6
        earlier = torch.tensor([[(a, b) <= (i, j) for b in range(6)] for a in range(6)])
        assert not changed[earlier].any(), (i, j)
        if i < 5:
            assert changed[i + 1, j], (i, j)


def test_pixelcnn_samples_are_valid_codes_and_follow_the_condition() -> None:
    torch.manual_seed(0)
    prior = GatedPixelCNN(num_codes=12, dim=8, layers=3, condition_dim=4).eval()
    samples = prior.sample(torch.randn(3, 4), (4, 5))
    assert samples.shape == (3, 4, 5) and samples.dtype == torch.long
    assert samples.min() >= 0 and samples.max() < 12
    codes = torch.randint(0, 12, (1, 4, 5))
    a, b = prior(codes, torch.zeros(1, 4)), prior(codes, torch.ones(1, 4))
    assert not torch.allclose(a, b)  # the condition reaches the logits


def test_image_topic_model_writes_topic_and_reference_grids(run_cli, tmp_path) -> None:
    """vqvae_cifar10 then tvqvae_image_cifar10 on the digits stand-in: results, and sample grids whose layout is
    a row per topic and whose first column of reference_samples.png is the test images themselves."""
    import numpy as np
    from PIL import Image

    from tests.conftest import CONFIGS

    run_cli("fit", "--config", str(CONFIGS / "vqvae_cifar10.yaml"))
    config = str(CONFIGS / "tvqvae_image_cifar10.yaml")
    options = [
        "--model.init_args.vqvae_path",
        str(tmp_path / "runs" / "vqvae_cifar10"),
        "--model.init_args.num_topics",
        "3",
        "--model.init_args.samples_per_topic",
        "2",
        "--model.init_args.prior_layers",
        "2",
    ]
    run_cli("fit", "--config", config, *options)
    test = run_cli("test", "--config", config, *options, "--ckpt_path", "last")
    run_dir = tmp_path / "runs" / "tvqvae_image_cifar10" / "version_0"
    assert {"test/purity", "test/nmi"} <= set(test.trainer.callback_metrics)
    topics = np.asarray(Image.open(run_dir / "topic_samples.png"))
    assert topics.shape == (3 * 33 + 1, 2 * 33 + 1, 3)  # 3 topics x 2 samples of 32 px, 1 px padding
    references = np.asarray(Image.open(run_dir / "reference_samples.png")).astype(float) / 255
    first = next(iter(test.datamodule.test_dataloader()))["image"][:2].permute(0, 2, 3, 1).numpy()
    for row in range(2):
        top = 1 + row * 33
        assert np.abs(references[top : top + 32, 1:33] - first[row]).max() <= 1 / 255 + 1e-6


def test_the_prior_s_condition_projection_starts_n01_as_the_official_embedding() -> None:
    from lightning_modules.tvqvae.image_networks import GatedPixelCNN

    torch.manual_seed(0)
    official = GatedPixelCNN(16, dim=8, layers=2, condition_dim=256).layers[0].condition.weight
    linear = (
        GatedPixelCNN(16, dim=8, layers=2, condition_dim=256, condition_init="linear")
        .layers[0]
        .condition.weight
    )
    assert 0.9 < float(official.std()) < 1.1 and float(linear.std()) < 0.05
