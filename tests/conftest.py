"""Shared fixtures: a tiny ForenSynths stand-in built once per session, and in-process CLI runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``root`` under which the tiny ForenSynths stand-in exists (as ``synthetic: true`` expects it)."""
    from datamodules.forensynths import ForenSynthsDataModule

    root = tmp_path_factory.mktemp("standins")
    ForenSynthsDataModule(root=str(root), synthetic=True, standin_size="tiny").prepare_data()
    return root


@pytest.fixture
def run_cli(tmp_path: Path, standin_root: Path):
    """Run ``cli.main`` in-process with smoke settings, runs under ``tmp_path/runs``; returns the CLI object."""
    import cli

    def run(*args: str, smoke: bool = True):
        argv = list(args)
        if smoke:  # after the last --config, so the arguments that follow still override the overlay
            configs = [i for i, a in enumerate(argv) if a == "--config"]
            at = configs[-1] + 2 if configs else 1
            argv[at:at] = [
                "--config",
                str(CONFIGS / "smoke.yaml"),
                "--data.init_args.root",
                str(standin_root),
            ]
        argv += ["--runs_dir", str(tmp_path / "runs")]
        return cli.main(argv)

    return run
