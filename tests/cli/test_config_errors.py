"""Config mistakes end in one line naming the full key, what is wrong, where it was given and the nearest valid
key; the full jsonargparse text stays behind RVL_TRACEBACK; Lightning's tips stay out of the output."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import cli
from tests.conftest import CONFIGS

BIHPF = ["fit", "--config", str(CONFIGS / "bihpf.yaml"), "--config", str(CONFIGS / "smoke.yaml")]


def last_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert cli.run_from_command_line(list(args)) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr and "usage:" not in stderr, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    return lines[-1]


def test_an_unknown_key_on_the_command_line_names_it_and_the_nearest_valid_one(capsys) -> None:
    line = last_line(capsys, *BIHPF, "--model.init_args.backbon", "resnet18")
    assert line.startswith("error: ConfigError: model.init_args.backbon (on the command line): unknown key")
    assert "did you mean model.init_args.backbone" in line
    line = last_line(capsys, *BIHPF, "--modle.x", "3")
    assert "modle.x (on the command line): unknown key; did you mean model?" in line


def test_options_are_never_abbreviated(capsys) -> None:
    line = last_line(capsys, *BIHPF, "--trainer.max_epoch", "3")  # argparse would take it for max_epochs
    assert "trainer.max_epoch (on the command line): unknown key; did you mean trainer.max_epochs" in line


def test_a_wrong_type_names_the_key_the_expected_type_and_the_value(capsys) -> None:
    line = last_line(capsys, *BIHPF, "--trainer.max_epochs", "ten")
    assert line.startswith(
        "error: ConfigError: trainer.max_epochs (on the command line): expected int or null"
    )
    assert "got 'ten'" in line
    line = last_line(capsys, *BIHPF, "--data.init_args.batch_size", "abc")
    assert "data.init_args.batch_size (on the command line): expected int, got 'abc'" in line


def test_a_value_outside_a_literal_names_the_choices(capsys) -> None:
    line = last_line(capsys, *BIHPF, "--model.init_args.space", "pixels")
    assert (
        "model.init_args.space (on the command line): expected one of image, normalized, got 'pixels'" in line
    )
    line = last_line(capsys, *BIHPF, "--imagenet", "lite5")
    assert "imagenet (on the command line): expected one of lite0, lite1, lite2 or null, got 'lite5'" in line


def test_the_imagenet_switch_refuses_methods_trained_from_scratch_in_one_line(capsys) -> None:
    cls = ["fit", "--config", str(CONFIGS / "cls_cifar10.yaml"), "--config", str(CONFIGS / "smoke.yaml")]
    line = last_line(capsys, *cls, "--imagenet", "lite0")
    assert (
        "ImageNetSwitchError: --imagenet lite0: ImageClassifierModule's protocol trains its backbone" in line
    )


def test_mistakes_inside_a_yaml_file_name_the_file(capsys, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("model:\n  init_args:\n    frequency_gian: 2\ntrainer:\n  max_epochs: 1\n")
    line = last_line(capsys, *BIHPF, "--config", str(unknown))
    assert (
        f"model.init_args.frequency_gian (in {unknown}): unknown key; did you mean model.init_args.frequency_gain"
        in line
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("trainer:\n  max_epochs: many\n")
    assert f"trainer.max_epochs (in {wrong}): expected int or null, got 'many'" in last_line(
        capsys, *BIHPF, "--config", str(wrong)
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  init_args:\n    backbone: [resnet18\n")
    line = last_line(capsys, *BIHPF, "--config", str(broken))
    assert f"{broken} line 4 is not valid YAML" in line


def test_class_paths_that_do_not_import_or_are_of_the_wrong_kind(capsys) -> None:
    line = last_line(capsys, *BIHPF, "--model", "lightning_modules.bihpf.module.BiHPFModul")
    assert "model: class_path 'lightning_modules.bihpf.module.BiHPFModul' does not import" in line
    assert "did you mean lightning_modules.bihpf.module.BiHPFModule?" in line
    line = last_line(capsys, *BIHPF, "--model", "lightning_modules.bihfp.module.BiHPFModule")
    assert "did you mean lightning_modules.bihpf.module.BiHPFModule?" in line
    line = last_line(capsys, *BIHPF, "--model", "datamodules.mvtec.MVTecDataModule")
    assert (
        "model: 'datamodules.mvtec.MVTecDataModule' is not a LightningModule (it is a LightningDataModule)"
        in line
    )
    line = last_line(capsys, *BIHPF, "--trainer.callbacks+", "callbacks.KImageMixng")
    assert "trainer.callbacks: class_path 'callbacks.KImageMixng' does not import" in line


def test_the_full_parser_text_stays_behind_the_traceback_switch(monkeypatch) -> None:
    monkeypatch.setenv("RVL_TRACEBACK", "1")
    with pytest.raises(cli.ConfigError, match="model.init_args.backbon") as raised:
        cli.run_from_command_line([*BIHPF, "--model.init_args.backbon", "resnet18"])
    assert "Option 'backbon' is not accepted" in str(raised.value.__cause__)


def test_no_lightning_tip_in_the_output(run_cli, caplog) -> None:
    caplog.set_level(logging.INFO)
    run_cli("fit", "--config", str(CONFIGS / "cls_logits.yaml"))
    assert any("GPU available" in m for m in caplog.messages)  # Lightning's own info lines are seen here
    assert not [m for m in caplog.messages if "Tip" in m]


def test_a_model_lr_the_optimizer_block_would_ignore_is_refused(capsys) -> None:
    """bihpf.yaml trains with its optimizer block's lr: a different --model.init_args.lr changed nothing, silently."""
    line = last_line(capsys, *BIHPF, "--model.init_args.lr", "3e-4")
    assert line.startswith("error: LearningRateConflictError: model.init_args.lr 0.0003 is not used")
    assert "set --optimizer.init_args.lr instead" in line
