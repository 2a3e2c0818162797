"""The RGB-D stand-in's gates (scripts/check_standin.py --layout rgbd): they pass on the stand-in, and each fails
when the stand-in loses what it guards — screens whose depth is not a clean plane (with clean planes, planarity
decides alone), or the agreement of depth with RGB (depth maps swapped between captures)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.standins.rgbd import write_rgbd_standin
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

from check_standin import blurred_control, check_blur_control, check_rgbd, to_tensor  # noqa: E402
from rgbd_cues import plane_residual  # noqa: E402

from datamodules.depth_io import read_depth  # noqa: E402


def test_the_gates_pass_on_the_stand_in_and_fail_without_its_phenomenon(tmp_path: Path) -> None:
    root = tmp_path / "rgbd"
    write_rgbd_standin(root, size="tiny")
    table, passed = check_rgbd("tiny", root)
    assert passed, table
    assert "| planarity | every display in [25, 75]: pass |" in table and "curved_led" in table

    flat = tmp_path / "flat_screens"  # the screens' depth replaced by its plane: "flat = spoof" then decides
    shutil.copytree(root, flat)
    for file in sorted(flat.glob("*/spoof/*/*_depth.*")):
        depth = read_depth(file)
        _, residual, valid = plane_residual(depth)
        depth[valid] -= residual
        if file.suffix == ".npy":
            np.save(file, depth.astype(np.float32))
        else:
            Image.fromarray(np.clip(np.rint(depth), 0, 65535).astype(np.uint16)).save(file)
    table, passed = check_rgbd("tiny", flat)
    assert not passed and "| planarity | every display in [25, 75]: FAIL |" in table, table

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
    assert not passed and "| consistency | every display >= 90: FAIL |" in table, table
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


def test_the_imagenet_probe_fails_a_stand_in_whose_unseen_fakes_a_frozen_network_already_finds() -> None:
    """A probe fitted on the seen family: unseen fakes made like the seen ones are found at ~100 % AP (the
    pretrained claims could not discriminate: FAIL); unseen fakes no different from reals are not (pass)."""
    import torch
    from forensynths_probe import PROBE_LIMIT, probe_table

    generator = torch.Generator().manual_seed(0)

    def family(shifted: bool, count: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
        reals = torch.rand(count, 3, 32, 32, generator=generator) * 0.6
        fakes = torch.rand(count, 3, 32, 32, generator=generator) * 0.6 + (0.4 if shifted else 0.0)
        return torch.cat([reals, fakes]), torch.cat([torch.zeros(count), torch.ones(count)])

    seen = family(True)
    found, passed = probe_table(
        seen, {"seen": family(True), "like_seen": family(True)}, "seen", (), image_size=64
    )
    assert not passed and "FAIL" in found and f"<= {PROBE_LIMIT:g}" in found
    unfound, passed = probe_table(
        seen, {"seen": family(True), "new": family(False)}, "seen", (), image_size=64
    )
    assert passed and unfound.rstrip().endswith(": pass |"), unfound


def test_the_anomaly_headroom_gate_fails_a_stand_in_whose_defects_no_feature_can_see(tmp_path: Path) -> None:
    """The one-shot ImageNet-feature score per category on the tiny stand-in; with every defect image replaced by
    a normal training image, nothing is left to find and the gate fails (AUROC far below its floor)."""
    from anomaly_headroom import DRAWS, HEADROOM, headroom_table

    from datamodules.standins.mvtec import write_mvtec_standin

    root = tmp_path / "mvtec"
    write_mvtec_standin(root, size="tiny")
    table, _ = headroom_table("tiny", "lite0", root)
    assert "| brick | " in table and "| coffee | " in table and f"[{HEADROOM[0]:g}, {HEADROOM[1]:g}]" in table
    for category in ("brick", "coffee"):
        normal = sorted((root / category / "train" / "good").iterdir())[0].read_bytes()
        for image in (root / category / "test").glob("*/*.png"):
            if image.parent.name != "good":
                image.write_bytes(normal)
    table, passed = headroom_table("tiny", "lite0", root)
    assert not passed and table.count("| FAIL |") >= 1 and len(DRAWS) == 3, table


def test_the_text_scorer_check_scores_each_category_against_the_others(tmp_path: Path) -> None:
    """The CLIP-free scorer's check on the tiny stand-in: a row per category with its AUROC and the ImageNet
    classes it sees, gated at MIN_AUROC; with every category's images made identical it cannot tell them apart
    (AUROC 50: FAIL)."""
    from text_scorer_check import MIN_AUROC, scorer_table

    from datamodules.standins.mvtec import write_mvtec_standin

    root = tmp_path / "mvtec"
    write_mvtec_standin(root, size="tiny")
    table, passed = scorer_table("tiny", "devise", root)
    rows = {
        line.split("|")[1].strip(): line.split("|") for line in table.splitlines() if line.startswith("| ")
    }
    assert {"brick", "coffee"} <= set(rows) and f">= {MIN_AUROC:g} %" in table, table
    assert passed == ("FAIL" not in table) and all(0 <= float(rows[c][2]) <= 100 for c in ("brick", "coffee"))
    image = sorted((root / "brick" / "train" / "good").iterdir())[0].read_bytes()
    for path in root.glob("*/train/good/*.png"):
        path.write_bytes(image)
    table, passed = scorer_table("tiny", "devise", root)
    assert not passed and "| brick | 50.0 |" in table, table
