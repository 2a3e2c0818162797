"""The RGB-D stand-in's gates (scripts/check_standin.py --layout rgbd): they pass on the stand-in, and each fails
when the stand-in loses what it guards — the flat genuine prints (planarity then decides alone), or the
agreement of depth with RGB (depth maps swapped between captures)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from datamodules.standins.rgbd import write_rgbd_standin
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

from check_standin import blurred_control, check_blur_control, check_rgbd, to_tensor  # noqa: E402


def test_the_gates_pass_on_the_stand_in_and_fail_without_its_phenomenon(tmp_path: Path) -> None:
    root = tmp_path / "rgbd"
    write_rgbd_standin(root, size="tiny")
    table, passed = check_rgbd("tiny", root)
    assert passed, table
    assert "| planarity | all <= 75: pass |" in table and "curved_led" in table

    no_prints = tmp_path / "no_prints"
    shutil.copytree(root, no_prints)
    for split in ("train", "val", "test"):
        shutil.rmtree(no_prints / split / "genuine" / "prints")
    table, passed = check_rgbd("tiny", no_prints)
    assert not passed and "| planarity | all <= 75: FAIL |" in table, table

    swapped = tmp_path / "swapped"
    shutil.copytree(root, swapped)
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):  # every depth map moves to another capture of the same format
        for suffix in ("png", "npy"):
            files = sorted((swapped / split).glob(f"*/*/*_depth.{suffix}"))
            contents = [f.read_bytes() for f in files]
            for file, index in zip(files, rng.permutation(len(files)), strict=True):
                file.write_bytes(contents[index])
    table, passed = check_rgbd("tiny", swapped)
    assert not passed and "| consistency | all >= 90: FAIL |" in table, table
    assert json.loads((root / "captures.json").read_text())  # what the oracle reads: content per capture


def test_the_blurred_control_gate_passes_blurred_and_fails_unblurred() -> None:
    """Smoothness alone finds the smoothed family, and tells the control's blurred reals from sharp ones; with
    the blur taken away (sigma 0) the gate fails."""
    import torch

    from datamodules.standins.forensynths import FAMILIES, SEEN_FAMILY, TRAIN_CATEGORIES
    from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops
    from datamodules.standins.upsampling import fake_images

    rng = np.random.default_rng(0)
    photos = tuple(load_photo(n) for c in TRAIN_CATEGORIES for n in PHOTO_CATEGORIES[c])
    families = {f.name: f for f in FAMILIES}

    def pair(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        reals, fakes = (random_crops(photos, 40, 64, rng) for _ in range(2))
        images = torch.cat([to_tensor(reals), to_tensor(fake_images(families[name], fakes))])
        return images, torch.cat([torch.zeros(40), torch.ones(40)])

    tests = {SEEN_FAMILY: pair(SEEN_FAMILY), "anti_artifact": pair("anti_artifact")}
    table, passed = check_blur_control(
        {**tests, "blurred_real": blurred_control(photos, tests[SEEN_FAMILY], 64, rng)}
    )
    assert passed, table
    anti_artifact_ap = float(table.splitlines()[-1].split("|")[3])
    assert anti_artifact_ap > 70, table  # the shortcut is real: smoothness finds the smoothed family
    unblurred = blurred_control(photos, tests[SEEN_FAMILY], 64, rng, sigma=(0.0, 0.0))
    table, passed = check_blur_control({**tests, "blurred_real": unblurred})
    assert not passed, table


def test_the_generation_gate_references_score_copies_blur_and_augmentation(standin_root: Path) -> None:
    """Exact copies have no spread and fail; blurring makes them less sharp; the augmented copies spread more
    than either; and a kind whose verdict differs from the expected one fails the check."""
    import gate_references

    table, passed = gate_references.gate_references(["brick"], root=standin_root, size="tiny", per_source=3)
    rows = {line.split("|")[2].strip(): line.split("|") for line in table.splitlines()[2:]}
    assert list(rows) == list(gate_references.EXPECTED), table
    spread = {kind: float(cells[3]) for kind, cells in rows.items()}
    sharpness = {kind: float(cells[4]) for kind, cells in rows.items()}
    assert spread["copies"] == 0 and sharpness["copies"] == 1 and rows["copies"][5].strip() == "fails", table
    assert sharpness["blurred copies"] < 0.8, table
    assert spread["augmented (the control)"] > max(spread["copies"], spread["blurred copies"]), table
    assert passed == ("NOT MET" not in table), table
