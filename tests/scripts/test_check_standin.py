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

from check_standin import check_rgbd  # noqa: E402


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
