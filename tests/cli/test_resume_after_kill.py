"""Nothing is lost: a run killed with SIGKILL in the middle of an epoch resumes from its last checkpoint with
``--ckpt_path last`` and ends with exactly the weights of a run that was never interrupted, augmentation on, with
0 and 2 loader workers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS
from tests.helpers import cli_command, cli_env, run_cli_subprocess, wait_for_line


@pytest.mark.parametrize("workers", [0, 2])
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(
    standin_root: Path, tmp_path: Path, workers: int
) -> None:
    # BiHPF with its whole augmentation (resize, blur and JPEG at p 0.5, random crop, flip): the checkpoint restores
    # torch, NumPy and Python's generators (callbacks/rng_state.py: the data order), and each sample's
    # augmentation is seeded from (run seed, epoch, index) whichever worker reads it (datamodules/base.py)
    def args(run_name: str, progress: Path) -> list[str]:
        return [
            "fit",
            "--config",
            str(CONFIGS / "bihpf.yaml"),
            "--config",
            str(CONFIGS / "smoke.yaml"),
            "--data.init_args.root",
            str(standin_root),
            "--data.init_args.num_workers",
            str(workers),
            "--runs_dir",
            str(tmp_path / "runs"),
            "--run_name",
            run_name,
            "--imagenet",
            "lite0",
            "--trainer.max_epochs",
            "3",
            "--trainer.limit_train_batches",
            "4",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.callbacks+=tests.helpers.SlowTraining",
            "--trainer.callbacks.progress_file",
            str(progress),
        ]

    run_cli_subprocess(*args("straight", tmp_path / "straight.txt"))

    progress = tmp_path / "killed.txt"
    job = subprocess.Popen(
        cli_command(*args("killed", progress), "--trainer.callbacks.seconds", "0.5"),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(progress, "epoch 1 batch 2", job)
    finally:
        job.kill()
        job.communicate()
    assert job.returncode == -9, "the run finished before it could be killed"
    checkpoints = tmp_path / "runs" / "killed" / "version_0" / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0  # epoch 1 was lost mid-way

    run_cli_subprocess(*args("killed", tmp_path / "resumed.txt"), "--ckpt_path", "last")
    assert (
        (tmp_path / "resumed.txt").read_text().startswith("epoch 1 batch 0")
    )  # from the last epoch boundary

    straight = torch.load(tmp_path / "runs/straight/version_0/checkpoints/last.ckpt", weights_only=True)
    resumed = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == straight["global_step"] == 12
    for name, value in straight["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], value), f"{name} differs after the resume"
    moments = [s["exp_avg"] for s in straight["optimizer_states"][0]["state"].values()]  # Adam's
    resumed_moments = [s["exp_avg"] for s in resumed["optimizer_states"][0]["state"].values()]
    assert moments and all(torch.equal(a, b) for a, b in zip(moments, resumed_moments, strict=True))
