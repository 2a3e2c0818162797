"""Shared fixtures: tiny stand-ins built once per session and in-process CLI runs (config introspection comes
from scripts/config_introspection.py and is re-exported here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.config_introspection import (  # noqa: F401  (tests import these from here)
    CONFIGS,
    accepted_arguments,
    config_classes,
    offline_smoke_arguments,
    takes_pretrained,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``root`` under which the tiny stand-ins exist (as ``synthetic: true`` expects them)."""
    from datamodules.forensynths import ForenSynthsDataModule

    root = tmp_path_factory.mktemp("standins")
    ForenSynthsDataModule(root=str(root), synthetic=True, standin_size="tiny").prepare_data()
    return root


@pytest.fixture
def run_cli(tmp_path: Path, standin_root: Path):
    """Run ``cli.main`` in-process with smoke settings, runs under ``tmp_path/runs``; returns the CLI object.

    The smoke overlay goes right after the last ``--config`` (arguments that follow still override it), with
    ``--model.init_args.pretrained false`` for models that take it (no weight download offline).
    """
    import cli

    def run(*args: str, smoke: bool = True):
        argv = list(args)
        if smoke:
            configs = [i for i, a in enumerate(argv) if a == "--config"]
            at = configs[-1] + 2 if configs else 1
            offline = offline_smoke_arguments(argv[configs[0] + 1]) if configs else []
            argv[at:at] = [
                "--config",
                str(CONFIGS / "smoke.yaml"),
                "--data.init_args.root",
                str(standin_root),
                *offline,
            ]
        argv += ["--runs_dir", str(tmp_path / "runs")]
        return cli.main(argv)

    return run
