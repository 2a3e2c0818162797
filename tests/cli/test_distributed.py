"""Many processes: DDP on CPU (gloo) gives the one-process result, SLURM's variables give the ranks, and a SLURM
job that gets SIGUSR1 saves an HPC checkpoint, asks to be requeued, and resumes from it when started again."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.environments import SLURMEnvironment

import cli
from tests.conftest import CONFIGS
from tests.helpers import cli_command, cli_env, last_scalars, run_cli_subprocess, wait_for_line

SMOKE = str(CONFIGS / "smoke.yaml")
DDP = str(CONFIGS / "env" / "ddp.yaml")
SLURM = str(CONFIGS / "env" / "slurm.yaml")


def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(
    standin_root: Path, tmp_path: Path
) -> None:
    """Two gloo ranks with batch 2 each see, step by step, the samples one process sees with batch 4 (fixed
    order, no augmentation), so weights and validation metrics must agree. SyncBatchNorm only runs on GPUs, and
    per-rank BatchNorm statistics of 2 samples differ from those of 4, so the network is a LayerNorm one
    (ConvNeXt-atto)."""
    common = ["fit", "--config", str(CONFIGS / "cls_cifar10.yaml"), "--config", SMOKE]
    same_work = [
        "--data.init_args.root",
        str(standin_root),
        "--runs_dir",
        str(tmp_path / "runs"),
        "--model.init_args.backbone",
        "convnext_atto",
        "--data.init_args.shuffle",
        "false",
        "--data.init_args.crop_padding",
        "0",
        "--data.init_args.flip",
        "false",
        "--trainer.limit_train_batches",
        "3",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.callbacks.iterations",  # the calibrator fitted at the end: its smoke size
        "50",
    ]
    run_cli_subprocess(*common, *same_work, "--run_name", "one", "--data.init_args.batch_size", "4")
    run_cli_subprocess(
        *common[:3],
        "--config",
        SMOKE,
        "--config",
        DDP,
        *same_work,
        "--run_name",
        "two",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.sync_batchnorm",
        "false",
        "--data.init_args.batch_size",
        "2",
    )
    tags = ("val/acc", "val/nll", "val/ece")
    one = last_scalars(tmp_path / "runs" / "one" / "version_0", *tags)
    two = last_scalars(tmp_path / "runs" / "two" / "version_0", *tags)
    for tag in tags:
        assert two[tag] == pytest.approx(one[tag], abs=2e-4), tag
    weights_one = torch.load(tmp_path / "runs/one/version_0/checkpoints/last.ckpt", weights_only=False)
    weights_two = torch.load(tmp_path / "runs/two/version_0/checkpoints/last.ckpt", weights_only=False)
    assert weights_one["global_step"] == weights_two["global_step"] == 3
    for name, value in weights_one["state_dict"].items():
        if value.is_floating_point():
            torch.testing.assert_close(weights_two["state_dict"][name], value, atol=1e-4, rtol=1e-3)


SLURM_RANK_3_OF_4 = {
    "SLURM_NTASKS": "4",
    "SLURM_NTASKS_PER_NODE": "2",
    "SLURM_JOB_NUM_NODES": "2",
    "SLURM_NNODES": "2",
    "SLURM_PROCID": "3",
    "SLURM_LOCALID": "1",
    "SLURM_NODEID": "1",
    "SLURM_JOB_NAME": "rvl-train",
    "SLURM_JOB_ID": "123",
    "SLURM_NODELIST": "node[1-2]",
}


@pytest.fixture
def isolated_process_state(monkeypatch: pytest.MonkeyPatch):
    """Building a rank-3 trainer in this process sets rank-zero-only's rank and distributed environment
    variables (WORLD_SIZE, NODE_RANK...); put everything back so later tests log and launch as rank 0 again."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only as fabric_rank_zero_only
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    for flag in {
        id(rank_zero_only): rank_zero_only,
        id(fabric_rank_zero_only): fabric_rank_zero_only,
    }.values():
        monkeypatch.setattr(flag, "rank", getattr(flag, "rank", 0))
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_slurm_variables_give_the_ranks_and_the_run_folder(
    isolated_process_state, monkeypatch: pytest.MonkeyPatch, standin_root: Path, tmp_path: Path
) -> None:
    for key, value in SLURM_RANK_3_OF_4.items():
        monkeypatch.setenv(key, value)
    built = cli.main(
        [
            "--config",
            str(CONFIGS / "cnndetection.yaml"),
            "--config",
            SMOKE,
            "--config",
            SLURM,
            "--data.init_args.root",
            str(standin_root),
            "--model.init_args.pretrained",
            "false",
            "--trainer.accelerator",
            "cpu",
            "--trainer.num_nodes",
            "2",
            "--trainer.devices",
            "2",
            "--run_version",
            "slurm_123",
            "--runs_dir",
            str(tmp_path / "runs"),
        ],
        run=False,
    )
    trainer = built.trainer
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (4, 3, 1, 1)
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and environment.auto_requeue
    assert environment.main_address == "node1"
    # HPC checkpoints are written to, and found in, the run's own folder
    assert Path(trainer.default_root_dir) == tmp_path / "runs" / "cnndetection" / "slurm_123"
    assert Path(trainer.log_dir) == Path(trainer.default_root_dir)


def test_sbatch_script_passes_the_job_shape_to_the_trainer() -> None:
    script = (CONFIGS / "slurm" / "train.sbatch").read_text()
    assert "#SBATCH --signal=SIGUSR1@90" in script and "#SBATCH --requeue" in script
    for flag in (
        '--trainer.num_nodes "$SLURM_JOB_NUM_NODES"',
        '--trainer.devices "$SLURM_NTASKS_PER_NODE"',
        '--run_version "slurm_${SLURM_JOB_ID}"',
        "--config configs/env/slurm.yaml",
        "srun ",
    ):
        assert flag in script
    subprocess.run(["bash", "-n", str(CONFIGS / "slurm" / "train.sbatch")], check=True)


def test_sigusr1_saves_an_hpc_checkpoint_requeues_and_the_requeued_job_resumes(
    standin_root: Path, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    requeued = tmp_path / "scontrol_calls.txt"
    scontrol = fake_bin / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {requeued}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    env = {
        "SLURM_NTASKS": "1",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NNODES": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "SLURM_JOB_NAME": "rvl-train",
        "SLURM_JOB_ID": "4242",
        "SLURM_NODELIST": "localhost",
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
    }
    progress = tmp_path / "progress.txt"
    args = [
        "fit",
        "--config",
        str(CONFIGS / "cnndetection.yaml"),
        "--config",
        SMOKE,
        "--config",
        SLURM,
        "--data.init_args.root",
        str(standin_root),
        "--model.init_args.pretrained",
        "false",
        "--model.init_args.backbone",  # a smaller checkpoint to write at every save than ResNet-50's 100 MB
        "resnet18",
        "--trainer.accelerator",
        "cpu",
        "--trainer.sync_batchnorm",
        "false",  # SyncBatchNorm needs GPUs
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        "4",
        "--run_version",
        "slurm_4242",
        "--runs_dir",
        str(tmp_path / "runs"),
        "--trainer.callbacks+=tests.helpers.SlowTraining",
        "--trainer.callbacks.progress_file",
        str(progress),
    ]
    job = subprocess.Popen(
        cli_command(*args, "--trainer.callbacks.seconds", "1.0"),
        env=cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(progress, "epoch 1 batch 1", job)
        job.send_signal(__import__("signal").SIGUSR1)
        run_dir = tmp_path / "runs" / "cnndetection" / "slurm_4242"
        deadline = time.monotonic() + 60
        while not (requeued.is_file() and (run_dir / "hpc_ckpt_1.ckpt").is_file()):
            assert time.monotonic() < deadline, "no HPC checkpoint or requeue within 60 s of SIGUSR1"
            time.sleep(0.1)
    finally:
        job.kill()  # what SLURM does to the old job once it is requeued
        job.communicate()
    assert requeued.read_text().split() == ["requeue", "4242"]
    saved = torch.load(run_dir / "hpc_ckpt_1.ckpt", weights_only=False)
    assert saved["global_step"] >= 6  # mid-way through the second epoch (4 batches per epoch)

    progress.unlink()
    again = run_cli_subprocess(*args, **env)  # the requeued job: same command, same job id
    assert "hpc_ckpt_1.ckpt" in again.stdout + again.stderr
    batches = progress.read_text().split("\n")
    assert not batches[0].startswith("epoch 0"), "the requeued job started training again from scratch"
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert final["global_step"] == 8 and final["epoch"] == 1  # the second (last) epoch, counted from 0
