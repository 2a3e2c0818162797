"""`predict --data.init_args.predict_dir <your folder>`: a classifier names its top classes, an anomaly model writes
each image's heat-map overlay (its pixels checked), an RGB-D model pairs the captures and names the lonely file."""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_modules.outputs.pictures import heat_picture
from tests.conftest import CONFIGS


def predictions(run) -> list[dict[str, str]]:
    with open(Path(run.trainer.log_dir) / "predictions.csv") as handle:
        return list(csv.DictReader(handle))


def fit_and_predict(run_cli, fitted_runs, config: str, folder: Callable[[], Path]):
    """Fit (which writes the stand-in; once a session), then predict on ``folder()``, a folder made from the
    stand-in's files."""
    checkpoint = str(fitted_runs(CONFIGS / config) / "checkpoints" / "last.ckpt")
    return run_cli(
        "predict",
        "--config",
        str(CONFIGS / config),
        "--ckpt_path",
        checkpoint,
        "--data.init_args.predict_dir",
        str(folder()),
        "--trainer.limit_predict_batches",
        "1.0",
    )


def test_a_classifier_names_its_top_three_classes_for_each_image(
    run_cli, fitted_runs, tmp_path: Path
) -> None:
    folder = tmp_path / "my_photos"  # any images, any size, in nested folders
    for i, size in enumerate([(40, 30), (32, 32), (20, 50)]):
        (folder / f"album{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"album{i % 2}" / f"photo{i}.png")
    rows = predictions(fit_and_predict(run_cli, fitted_runs, "cls_cifar10.yaml", lambda: folder))
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.rglob("*.png"))
    for row in rows:
        probs = [float(row[f"top{k}_prob"]) for k in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and abs(probs[0] - float(row["confidence"])) < 1e-6
        assert row["top1_class"] != row["top2_class"] and row["label"] == "-1"


def test_an_anomaly_model_writes_a_heat_map_overlay_per_image(
    run_cli, fitted_runs, standin_root: Path
) -> None:
    def one_defect_type() -> Path:
        return next((standin_root / "mvtec_standin_tiny").glob("*/test/*"))  # of one category

    predict = fit_and_predict(run_cli, fitted_runs, "patchcore_mvtec.yaml", one_defect_type)
    folder = one_defect_type()
    rows = predictions(predict)
    assert len(rows) == len(list(folder.glob("*.png"))) and all(r["pred_label"] in ("0", "1") for r in rows)
    model, data = predict.model.eval(), predict.datamodule
    batch = next(iter(data.predict_dataloader()))
    with torch.no_grad():
        maps = model.predict_scores(batch)["anomaly_map"]
    expected = (
        0.5 * batch["image"][0] + 0.5 * heat_picture(maps[:1], float(model.map_low), float(model.map_high))[0]
    )
    written = Path(predict.trainer.log_dir) / rows[0]["overlay"]
    pixels = np.asarray(Image.open(written).convert("RGB")).astype(np.float32) / 255.0
    assert rows[0]["path"] == batch["path"][0]
    assert np.abs(pixels - expected.permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6


def test_rgbd_pairs_are_found_by_the_training_naming_rule(
    run_cli, fitted_runs, standin_root: Path, tmp_path: Path, caplog
) -> None:
    folder = tmp_path / "captures"
    lonely = folder / "lonely_rgb.png"

    def copied_captures() -> Path:
        source = standin_root / "rgbd_spoof_standin_tiny" / "test"
        for rgb in sorted(source.glob("*/*/*_rgb.png"))[:5]:
            depth = next(rgb.parent.glob(rgb.name.replace("_rgb.png", "_depth.*")))
            for file in (rgb, depth):
                target = folder / rgb.parent.name / file.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, target)
        shutil.copy(rgb, lonely)
        return folder

    with caplog.at_level(logging.WARNING, logger="datamodules"):
        rows = predictions(fit_and_predict(run_cli, fitted_runs, "mtofnet.yaml", copied_captures))
    assert len(rows) == 5 and all(
        np.isfinite(float(r["spoof_score"])) and r["pred_label"] in "01" for r in rows
    )
    assert {Path(r["path"]).name for r in rows} == {p.name for p in folder.glob("*/*_rgb.png")}
    assert "1 files without their RGB or depth partner skipped" in caplog.text and str(lonely) in caplog.text
