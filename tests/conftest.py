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
    prerequisites,
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


def smoke_argv(
    args: tuple[str, ...] | list[str], standin_root: Path, runs_dir: Path, smoke: bool = True
) -> list[str]:
    """``args`` with the smoke overlay right after the last ``--config`` (arguments that follow still override
    it), ``--model.init_args.pretrained false`` for models that take it (no weight download offline), the
    stand-ins' root, and ``runs_dir``."""
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
    return argv + ["--runs_dir", str(runs_dir)]


@pytest.fixture
def run_cli(tmp_path: Path, standin_root: Path):
    """Run ``cli.main`` in-process with smoke settings, runs under ``tmp_path/runs``; returns the CLI object."""
    import cli

    def run(*args: str, smoke: bool = True):
        return cli.main(smoke_argv(args, standin_root, tmp_path / "runs", smoke))

    return run


@pytest.fixture(scope="session")
def prerequisite_runs(tmp_path_factory: pytest.TempPathFactory, standin_root: Path):
    """``arguments(config)``: the arguments that point ``config`` to the runs it reads (``runs/<config>`` values),
    each such run fitted once per session at smoke size, prerequisites of prerequisites first."""
    import cli

    runs = tmp_path_factory.mktemp("prerequisite_runs")
    done: set[str] = set()

    def arguments(config: Path) -> list[str]:
        result = []
        for key, name in prerequisites(config).items():
            if name not in done:
                reads = arguments(CONFIGS / f"{name}.yaml")
                cli.main(
                    smoke_argv(["fit", "--config", str(CONFIGS / f"{name}.yaml"), *reads], standin_root, runs)
                )
                done.add(name)
            result += [f"--{key}", str(runs / name)]
        return result

    return arguments
