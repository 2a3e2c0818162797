"""PostHocCalibration through the CLI: table, checkpointed calibrator, logits export, TensorBoard pictures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from callbacks.calibration import PostHocCalibration
from tests.conftest import CONFIGS
from tests.helpers import read_events

LOGITS = str(CONFIGS / "cls_logits.yaml")


def table(run_dir: Path) -> dict[str, dict[str, float]]:
    with open(run_dir / "calibration.csv") as handle:
        return {
            row["group"]: {k: float(v) for k, v in row.items() if k not in ("group", "seen")}
            for row in csv.DictReader(handle)
        }


def test_logits_config_tabulates_every_calibrator_and_objective(run_cli) -> None:
    cli = run_cli("test", "--config", LOGITS, "--trainer.limit_test_batches", "1.0")
    run_dir = Path(cli.trainer.log_dir)
    rows = table(run_dir)
    expected = {"uncalibrated"} | {
        f"{c} / {o}" for c in ("ts", "cts", "ets", "pts") for o in ("nll", "cl", "ls", "fl")
    }
    assert set(rows) == expected
    # the stand-in is over-confident: temperature scaling lowers ECE and NLL and keeps accuracy
    assert rows["ts / nll"]["ece"] < rows["uncalibrated"]["ece"]
    assert rows["ts / nll"]["nll"] < rows["uncalibrated"]["nll"]
    assert rows["ts / nll"]["acc"] == rows["uncalibrated"]["acc"] == rows["ts / cl"]["acc"]
    metrics = cli.trainer.callback_metrics
    assert metrics["test/ece/calibrated"] < metrics["test/ece/uncalibrated"]
    first, _, title = (run_dir / "calibration.md").read_text().splitlines()[:3]
    assert first.startswith("_STAND-INS: data: the logits stand-in") and title.startswith("### Post-hoc")
    images = set(read_events(run_dir).Tags()["images"])
    assert {"pictures/reliability_uncalibrated", "pictures/reliability_calibrated"} <= images


def test_fit_stores_the_calibrator_and_test_reuses_it(run_cli, monkeypatch) -> None:
    fit = run_cli("fit", "--config", LOGITS)
    calibrated = Path(fit.trainer.log_dir) / "checkpoints" / "calibrated.ckpt"
    assert calibrated.is_file()
    state = next(
        v
        for k, v in torch.load(calibrated, weights_only=False)["callbacks"].items()
        if "PostHocCalibration" in k
    )
    assert state["calibrator"] == "ts" and state["objective"] == "cl" and "log_temperature" in state["state"]
    temperature = float(state["state"]["log_temperature"].exp())

    fits = []
    original = PostHocCalibration.fit
    monkeypatch.setattr(PostHocCalibration, "fit", lambda self, *a: fits.append(a[:2]) or original(self, *a))
    test = run_cli(
        "test", "--config", LOGITS, "--ckpt_path", str(calibrated), "--trainer.callbacks.compare", "false"
    )
    assert fits == []  # the checkpointed calibrator was used, not refitted
    callback = next(c for c in test.trainer.callbacks if isinstance(c, PostHocCalibration))
    assert float(callback.fitted.temperature) == pytest.approx(temperature)
    # --ckpt_path last, as the README runs it, is that checkpoint too: no fit on every predict
    last = calibrated.parent / "last.ckpt"
    assert last.is_symlink() and last.resolve() == calibrated.resolve()
    predict = run_cli("predict", "--config", LOGITS, "--ckpt_path", "last")
    assert fits == [] and float(predict.model.calibrator.temperature) == pytest.approx(temperature)


ETS_LOGIT = (
    '{"class_path": "lightning_modules.post_processing.calibrators.EnsembleTemperatureScaler", '
    '"init_args": {"space": "logit"}}'
)


def test_a_calibrator_chosen_by_class_path_is_fitted_saved_and_reused_only_when_asked_for(
    run_cli, monkeypatch
) -> None:
    """Calibrators are components like any other: a class_path with init_args (the class count comes from the
    network); the checkpoint names the class and its init_args, and a run asking for another one refits."""
    fit = run_cli("fit", "--config", LOGITS, "--trainer.callbacks.calibrator", ETS_LOGIT)
    calibrated = Path(fit.trainer.log_dir) / "checkpoints" / "calibrated.ckpt"
    state = next(
        v
        for k, v in torch.load(calibrated, weights_only=False)["callbacks"].items()
        if "PostHocCalibration" in k
    )
    assert state["calibrator"] == "ets" and state["init_args"] == {"space": "logit"}
    fits = []
    original = PostHocCalibration.fit
    monkeypatch.setattr(PostHocCalibration, "fit", lambda self, *a: fits.append(a[:2]) or original(self, *a))
    common = ("--ckpt_path", str(calibrated), "--trainer.callbacks.compare", "false")
    same = run_cli("test", "--config", LOGITS, "--trainer.callbacks.calibrator", ETS_LOGIT, *common)
    assert fits == [] and type(same.model.calibrator).__name__ == "EnsembleTemperatureScaler"
    assert same.model.calibrator.space == "logit"
    other = run_cli("test", "--config", LOGITS, *common)  # the config's TemperatureScaler: refitted
    assert len(fits) == 1 and type(other.model.calibrator).__name__ == "TemperatureScaler"


def test_a_classifier_run_exports_logits_that_the_logits_config_reads(run_cli) -> None:
    config = str(CONFIGS / "cls_cifar10.yaml")
    run_cli("fit", "--config", config, "--model.init_args.backbone", "cifar_resnet20")
    test = run_cli(
        "test", "--config", config, "--model.init_args.backbone", "cifar_resnet20", "--ckpt_path", "last"
    )
    exported = Path(test.trainer.log_dir) / "logits.npz"
    assert exported.is_file() and (Path(test.trainer.log_dir) / "calibration.csv").is_file()
    again = run_cli(
        "test",
        "--config",
        LOGITS,
        "--data.init_args.synthetic",
        "false",
        "--data.init_args.path",
        str(exported),
    )
    # the same logits give the same table, to the digit: calibration needs no network (the components beside
    # it differ on purpose: they name what produced the logits, a network or a logits file)
    first, second = (
        (Path(r.trainer.log_dir) / "calibration.csv").read_text().splitlines() for r in (test, again)
    )
    assert set(table(Path(again.trainer.log_dir))) >= {"uncalibrated", "ts / cl", "ts / fl"}
    assert first == second and len(first) > 3


def test_modules_without_logits_are_refused(run_cli) -> None:
    with pytest.raises(TypeError, match=r"PostHocCalibration needs BiHPFModule to have \['set_calibrator'\]"):
        run_cli(
            "fit",
            "--config",
            str(CONFIGS / "bihpf.yaml"),
            "--trainer.callbacks+",
            "callbacks.PostHocCalibration",
        )
