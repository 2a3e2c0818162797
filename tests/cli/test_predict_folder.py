"""`predict --data.init_args.predict_dir <your folder>`: a classifier names its top classes, an anomaly model writes
each image's heat-map overlay (its pixels checked), an RGB-D model pairs the captures and names the lonely file."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_modules.metrics.detection import mean_logit_score
from lightning_modules.outputs.pictures import heat_picture
from tests.conftest import CONFIGS
from tests.helpers import predictions_file


def predictions(run) -> list[dict[str, str]]:
    with open(predictions_file(run)) as handle:
        return list(csv.DictReader(handle))


def fit_and_predict(run_cli, fitted_runs, config: str, folder: Callable[[], Path], *extra: str):
    """Fit (which writes the stand-in; once a session), then predict on ``folder()``, a folder made from the
    stand-in's files."""
    checkpoint = str(fitted_runs(CONFIGS / config) / "checkpoints" / "last.ckpt")
    return run_cli(
        "predict",
        "--config",
        str(CONFIGS / config),
        *fitted_runs.prerequisites(CONFIGS / config),
        "--ckpt_path",
        checkpoint,
        "--data.init_args.predict_dir",
        str(folder()),
        "--trainer.limit_predict_batches",
        "1.0",
        *extra,
    )


def test_a_classifier_names_its_top_three_classes_for_each_image(
    run_cli, fitted_runs, tmp_path: Path
) -> None:
    folder = tmp_path / "my_photos"  # any images, any size, in nested folders
    for i, size in enumerate([(40, 30), (32, 32), (20, 50)]):
        (folder / f"album{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"album{i % 2}" / f"photo{i}.png")
    predict = fit_and_predict(run_cli, fitted_runs, "cls_cifar10.yaml", lambda: folder)
    rows = predictions(predict)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.rglob("*.png"))
    for row in rows:
        probs = [float(row[f"top{k}_prob"]) for k in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and abs(probs[0] - float(row["confidence"])) < 1e-6
        assert row["top1_class"] != row["top2_class"] and row["label"] == "-1"
    # the probabilities are the fitted calibrator's, not the raw softmax (recomputed from the same images)
    model, calibrator = predict.model.eval(), predict.model.calibrator
    assert calibrator is not None
    by_path = {r["path"]: r for r in rows}
    for batch in predict.datamodule.predict_dataloader():
        with torch.no_grad():
            raw = model.logits(batch).float()
            expected = calibrator(raw).softmax(dim=1).max(dim=1).values
        for path, value, plain in zip(
            batch["path"], expected, raw.softmax(dim=1).max(dim=1).values, strict=True
        ):
            assert abs(float(by_path[path]["top1_prob"]) - float(value)) < 1e-5
            assert abs(float(value) - float(plain)) > 1e-4, "the calibrator changes nothing here: no test"


def test_a_classifier_names_the_classes_it_was_trained_on_from_its_checkpoint(
    run_cli, tmp_path: Path
) -> None:
    """The class names travel in the checkpoint: a folder of photos has none, and the data need not be there."""
    config = str(CONFIGS / "cls_cifar100_lt.yaml")
    small = ["--model.init_args.backbone", "cifar_resnet20", "--trainer.callbacks.iterations", "20"]
    fit = run_cli("fit", "--config", config, *small)
    assert fit.model.class_names[:2] == ["digit0_palette0", "digit0_palette1"]
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        folder / "a.png"
    )
    checkpoint = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    predict = run_cli(  # on a machine without the training data: a root that does not exist
        "predict",
        "--config",
        config,
        *small,
        "--ckpt_path",
        str(checkpoint),
        "--data.init_args.predict_dir",
        str(folder),
        "--data.init_args.root",
        str(tmp_path / "no_data"),
        "--data.init_args.synthetic",
        "false",
    )
    row = predictions(predict)[0]
    assert all(row[f"top{k}_class"] in fit.model.class_names for k in (1, 2, 3)), row
    assert row["top1_class"].startswith("digit")


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


def test_a_messy_folder_is_scored_upright_with_every_entry_accounted_and_no_output_lost(
    run_cli, fitted_runs, standin_root: Path, tmp_path: Path, caplog, capsys
) -> None:
    """Same-stem files and same names in two folders get their own overlays; a phone photo stored sideways is
    scored and drawn upright; folders named like images, broken and looping links and other files are counted;
    a second predict keeps the first one's CSV and pictures; a cut predict says so."""
    from tests.datamodules.test_bad_input import sideways_copy

    folder = tmp_path / "messy"

    def messy() -> Path:  # made from the stand-in once the fit has written it
        if folder.is_dir():
            return folder
        source = sorted((standin_root / "mvtec_standin_tiny").glob("*/test/*/*.png"))
        pictures = [np.asarray(Image.open(p).convert("RGB")) for p in source[:3]]
        for sub_folder in ("x", "y"):
            (folder / sub_folder).mkdir(parents=True)
        Image.fromarray(pictures[0]).save(folder / "dup.png")
        Image.fromarray(pictures[1]).save(folder / "dup.jpg", quality=95)
        Image.fromarray(pictures[1]).save(folder / "x" / "a.png")
        Image.fromarray(pictures[2]).save(folder / "y" / "a.png")
        Image.fromarray(pictures[2]).save(folder / "upright.png")
        sideways_copy(pictures[2], folder / "phone.png")
        (folder / "folder.jpg").mkdir()
        (folder / "broken.png").symlink_to(folder / "nowhere.png")
        (folder / "loop.png").symlink_to(folder / "loop.png")
        (folder / "notes.txt").write_text("not an image")
        return folder

    caplog.set_level(logging.WARNING)
    events_before = sorted((fitted_runs(CONFIGS / "patchcore_mvtec.yaml")).glob("events.out.tfevents.*"))
    first = fit_and_predict(run_cli, fitted_runs, "patchcore_mvtec.yaml", messy)
    rows = {Path(r["path"]).relative_to(folder).as_posix(): r for r in predictions(first)}
    assert sorted(rows) == ["dup.jpg", "dup.png", "phone.png", "upright.png", "x/a.png", "y/a.png"]
    overlays = {name: row["overlay"] for name, row in rows.items()}
    stem = predictions_file(
        first
    ).stem  # predictions, or predictions_<n> when this run was predicted on before
    assert len(set(overlays.values())) == 6 and overlays["x/a.png"] == f"{stem}/x/a.png.png"
    run_dir = Path(first.trainer.log_dir)
    drawn = {n: np.asarray(Image.open(run_dir / o).convert("RGB")) for n, o in overlays.items()}
    assert not np.array_equal(drawn["x/a.png"], drawn["y/a.png"])  # each its own picture
    assert rows["phone.png"]["anomaly_score"] == rows["upright.png"]["anomaly_score"]
    assert np.array_equal(drawn["phone.png"], drawn["upright.png"])  # drawn upright too
    summary = next(r.getMessage() for r in caplog.records if "images found" in r.getMessage())
    assert "6 images found, 0 unreadable" in summary
    for what in (
        "1 folders named like images (folder.jpg)",
        "2 broken or looping links",
        "1 files of other types (notes.txt)",
    ):
        assert what in summary, summary
    capsys.readouterr()
    second = fit_and_predict(
        run_cli, fitted_runs, "patchcore_mvtec.yaml", messy, "--trainer.limit_predict_batches", "1"
    )
    second_stem = predictions_file(second).stem
    assert second_stem != stem and (run_dir / second_stem / "dup.png.png").is_file()
    assert predictions_file(first).is_file() and (run_dir / stem / "dup.png.png").is_file()  # kept
    assert "predict stopped early: 1 of the data's 2 batches scored (trainer.limit_predict_batches=1" in (
        capsys.readouterr().out
    )
    assert sorted(run_dir.glob("events.out.tfevents.*")) == events_before  # no empty event file per predict


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


@pytest.mark.parametrize("config, given", [("lda_20ng.yaml", "folder"), ("tvqvae_20ng.yaml", "jsonl")])
def test_a_topic_model_gives_each_document_its_topics(
    config: str, given: str, run_cli, fitted_runs, standin_root: Path, tmp_path: Path, caplog
) -> None:
    """Your documents, in the training corpus's vocabulary (which the checkpoint holds: the corpus need not be
    there): a row each with its topic proportions (TVQ-VAE's from token vectors of these documents); one without
    a vocabulary word is named and skipped."""
    texts = []

    def documents() -> Path:
        corpus = next((standin_root / "text_corpus_standin_mini_newsgroup_tiny").glob("*.jsonl"))
        texts.extend(json.loads(line)["text"] for line in corpus.read_text().splitlines()[:3])
        texts.append("zzqx qqzv")  # no word of the vocabulary
        if given == "jsonl":
            (tmp_path / "mine.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
            return tmp_path / "mine.jsonl"
        for i, text in enumerate(texts):
            (tmp_path / "notes" / f"n{i}").mkdir(parents=True)
            (tmp_path / "notes" / f"n{i}" / f"doc{i}.txt").write_text(text)
        return tmp_path / "notes"

    no_corpus = ("--data.init_args.root", str(tmp_path / "no_data"), "--data.init_args.synthetic", "false")
    with caplog.at_level(
        logging.WARNING, logger="datamodules"
    ):  # the corpus is not there: the checkpoint suffices
        predict = fit_and_predict(
            run_cli, fitted_runs, config, documents, *no_corpus, "--data.init_args.corpus", "jsonl"
        )
        rows = predictions(predict)
    trained = torch.load(predict.trainer.ckpt_path, map_location="cpu", weights_only=True)["trained_on"][
        "vocabulary"
    ]
    assert predict.datamodule.id2word() == trained and len(trained) == predict.model.hparams.vocab_size
    assert not (tmp_path / "no_data").exists()  # the missing corpus root is not created (no cache under it)
    name = "mine.jsonl:4" if given == "jsonl" else "doc3.txt"
    assert "1 documents without a word of the vocabulary skipped" in caplog.text and name in caplog.text
    assert len(rows) == 3 and all(r["label"] == "-1" for r in rows)
    assert [Path(r["path"]).name for r in rows] == (
        ["mine.jsonl:1", "mine.jsonl:2", "mine.jsonl:3"]
        if given == "jsonl"
        else ["doc0.txt", "doc1.txt", "doc2.txt"]
    )
    for row in rows:
        theta = np.array([float(v) for k, v in row.items() if k.startswith("theta_")])
        assert abs(theta.sum() - 1) <= len(theta) * 1e-6 and int(row["topic"]) == int(
            theta.argmax()
        )  # 6 digits
        assert abs(float(row["topic_probability"]) - theta.max()) < 1e-6


def test_a_video_detector_scores_each_video_folder_or_each_clip(
    run_cli, fitted_runs, standin_root: Path, tmp_path: Path, caplog
) -> None:
    """Your videos (folders of frames, any depth): their style latents extracted first, then a row per video
    (σ of its mean clip logit, the clips arriving over several batches) or, with per_clip, per clip; a video
    shorter than min_frames is named."""
    mine = tmp_path / "mine"

    def videos() -> Path:
        originals = sorted((standin_root / "faceforensics_standin_tiny" / "test" / "original").iterdir())
        frames = sorted(originals[0].glob("*.png")) + sorted(
            originals[1].glob("*.png")
        )  # 72: two clips of 32
        for name, chosen in (("long", frames), ("trip/day1/clipA", frames[:36]), ("short", frames[:10])):
            (mine / name).mkdir(parents=True)
            for i, frame in enumerate(chosen):
                shutil.copy(frame, mine / name / f"{i:04d}.png")
        return mine

    with caplog.at_level(logging.WARNING, logger="datamodules"):
        rows = predictions(
            fit_and_predict(run_cli, fitted_runs, "stylegru.yaml", videos, "--data.init_args.batch_size", "1")
        )
    assert "1 videos shorter than min_frames=16 dropped" in caplog.text and str(mine / "short") in caplog.text
    assert [(Path(r["path"]).relative_to(mine).as_posix(), r["clips"]) for r in rows] == [
        ("long", "2"),
        ("trip/day1/clipA", "1"),
    ]
    assert (mine / "long" / "latents.npy").is_file()  # extracted by the style encoder for these videos
    clips = predictions(
        fit_and_predict(
            run_cli, fitted_runs, "stylegru.yaml", lambda: mine, "--data.init_args.per_clip", "true"
        )
    )
    assert [r["path"].removeprefix(str(mine) + "/") for r in clips] == [
        "long#0",
        "long#32",
        "trip/day1/clipA#0",
    ]
    long = mean_logit_score(torch.tensor([float(r["fake_prob"]) for r in clips[:2]]))
    assert abs(float(rows[0]["fake_prob"]) - long) < 1e-6 and rows[0]["pred_label"] == str(int(long > 0.5))


def test_logits_of_yours_are_calibrated_a_row_each(
    run_cli, fitted_runs, standin_root: Path, tmp_path: Path
) -> None:
    """A logits file (the calibrated model's class count) through the run's calibrator; a wrong width is one
    line naming the file and the expected shape."""
    mine = tmp_path / "mine.npy"

    def logits() -> Path:
        with np.load(standin_root / "logits_standin_tiny" / "logits.npz") as standin:
            classes = standin["test_logits"].shape[1]
        np.save(mine, np.random.default_rng(0).normal(0, 3, (5, classes)).astype(np.float32))
        return mine

    predict = fit_and_predict(run_cli, fitted_runs, "cls_logits.yaml", logits)
    rows = predictions(predict)
    assert [r["path"] for r in rows] == [f"{mine}#{i}" for i in range(5)] and all(
        r["label"] == "-1" for r in rows
    )
    raw = torch.from_numpy(np.load(mine))
    with torch.no_grad():  # the run's fitted calibrator on your logits, then the softmax
        expected = predict.model.calibrator(raw).softmax(dim=1).topk(3, dim=1).values
    plain = raw.softmax(dim=1).topk(3, dim=1).values
    for row, calibrated, uncalibrated in zip(rows, expected, plain, strict=True):
        probs = torch.tensor([float(row[f"top{k}_prob"]) for k in (1, 2, 3)])
        torch.testing.assert_close(probs, calibrated, atol=1e-5, rtol=0)
        assert (probs - uncalibrated).abs().max() > 1e-3  # the calibrator was applied, not skipped
    np.save(mine, np.zeros((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"mine.npy: expected \(N, \d+\) logits .* got \(2, 1\)"):
        fit_and_predict(run_cli, fitted_runs, "cls_logits.yaml", lambda: mine)
