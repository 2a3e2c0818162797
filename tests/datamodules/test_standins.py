"""The stand-in: deterministic, real content, and each family leaves its own up-sampling fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datamodules.standins.forensynths import FAMILIES, write_forensynths_standin
from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops
from datamodules.standins.upsampling import UpsamplingFamily, fake_images
from lightning_modules.components.spectral import log_magnitude_spectrum


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_dataset_other_seed_other(tmp_path: Path, standin_root: Path) -> None:
    again = write_forensynths_standin(tmp_path / "again", size="tiny", seed=0)
    other = write_forensynths_standin(tmp_path / "other", size="tiny", seed=1)
    reference = standin_root / "forensynths_standin_tiny"
    assert folder_digest(again) == folder_digest(reference)
    assert folder_digest(other) != folder_digest(reference)


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_forensynths_standin(tmp_path / "bad", size="huge")
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    photos = tuple(load_photo(n) for n in PHOTO_CATEGORIES["person"])
    return random_crops(photos, 32, 64, np.random.default_rng(0))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_fakes_keep_the_content(family: UpsamplingFamily, crops: np.ndarray) -> None:
    """A fake is its source at lower resolution plus a fingerprint: close to a plain bilinear down/up-sampling
    of the source (what is left is the family's operator), and strongly correlated with the source itself."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    factor = 2**family.stages
    plain = F.interpolate(F.avg_pool2d(x, factor), scale_factor=factor, mode="bilinear", align_corners=False)
    fakes = torch.from_numpy(fake_images(family, crops)).permute(0, 3, 1, 2).float() / 255.0
    psnr = 10 * torch.log10(1.0 / F.mse_loss(fakes, plain))
    assert psnr > 17.0, f"{family.name}: PSNR to plain resampling {psnr:.1f} dB"
    correlation = torch.corrcoef(torch.stack([fakes.flatten(), x.flatten()]))[0, 1]
    assert correlation > 0.8, f"{family.name}: correlation with the source {correlation:.2f}"
    assert not torch.allclose(fakes, plain, atol=2 / 255), f"{family.name}: no fingerprint left"


def test_families_leave_distinct_spectral_fingerprints(crops: np.ndarray) -> None:
    """Mean log-spectra of the fakes minus that of the reals differ between families, and the transposed-
    convolution family puts excess energy at the up-sampling's replica frequency (the Nyquist corner)."""

    def mean_spectrum(images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        return log_magnitude_spectrum(x).mean(dim=(0, 1))

    real = mean_spectrum(crops)
    residues = {f.name: mean_spectrum(fake_images(f, crops)) - real for f in FAMILIES}
    names = list(residues)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (residues[a] - residues[b]).abs().mean() > 0.05, (a, b)
    corner = residues["transconv"][0, 0]  # after fftshift, index (0, 0) is the (H/2, W/2) frequency
    assert corner > residues["transconv"].median()


def test_sizes_not_divisible_by_the_stages_fail_clearly() -> None:
    with pytest.raises(ValueError, match="not divisible by 4"):
        UpsamplingFamily("x", "bilinear_conv", stages=2, seed=0)(torch.rand(1, 3, 30, 30))
    with pytest.raises(ValueError, match="unknown up-sampling operator"):
        UpsamplingFamily("x", "magic", stages=1, seed=0)
