"""Shared fixtures: tiny stand-ins built once per session and in-process CLI runs (config introspection comes
from benchmarks/config_introspection.py and is re-exported here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.config_introspection import (  # noqa: F401  (tests import these from here)
    CONFIGS,
    accepted_arguments,
    config_classes,
    offline_smoke_arguments,
    prerequisites,
    takes_pretrained,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one pytest-xdist worker per core: each worker, and every CLI process a test starts from
    # it, computes on one thread, so the workers never oversubscribe the cores (two 2-thread torch processes on
    # 2 cores make small ops ~40x slower)
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

SHARED_RUN_FIXTURES = {"fitted_runs", "prerequisite_runs"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that read the session's fitted runs go to one worker (``--dist loadgroup``), so each run is
    fitted once per ``make test``, not once per worker."""
    for item in items:
        if SHARED_RUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("fitted_runs"))


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``root`` under which the tiny stand-ins exist (as ``synthetic: true`` expects them)."""
    from datamodules.forensynths import ForenSynthsDataModule

    root = tmp_path_factory.mktemp("standins")
    ForenSynthsDataModule(root=str(root), synthetic=True, standin_size="tiny").prepare_data()
    return root


def smoke_argv(
    args: tuple[str, ...] | list[str],
    standin_root: Path,
    runs_dir: Path,
    smoke: bool = True,
    imagenet: bool = True,
) -> list[str]:
    """``args`` with the smoke overlay right after the last ``--config`` (arguments that follow still override
    it), ``--imagenet lite0`` for models whose paper starts from ImageNet weights (the packaged real weights;
    ``imagenet=False``: the config's own backbone, randomly initialized) and ``--model.init_args.pretrained
    false`` for other models that take it (no weight download offline; neither for ``test`` / ``predict`` from a
    checkpoint, which rebuilds the model it holds), the stand-ins' root, and ``runs_dir``."""
    argv = list(args)
    if smoke:
        configs = [i for i, a in enumerate(argv) if a == "--config"]
        at = configs[-1] + 2 if configs else 1
        from_checkpoint = "--ckpt_path" in argv and argv[0] != "fit"
        offline = (
            offline_smoke_arguments(argv[configs[0] + 1], imagenet, not from_checkpoint) if configs else []
        )
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
    """Run ``cli.main`` in-process with smoke settings (:func:`smoke_argv`), runs under ``tmp_path/runs``; returns
    the CLI object."""
    import cli

    def run(*args: str, smoke: bool = True, imagenet: bool = True):
        return cli.main(smoke_argv(args, standin_root, tmp_path / "runs", smoke, imagenet))

    return run


class FittedRuns:
    """``fitted(config, *arguments)``: the run folder (``<runs>/<config>/version_N``) of ``config`` fitted once
    per session at smoke size with ``arguments``, the runs it reads fitted first (``version_0`` without
    arguments). Tests that only read a run (test, predict, export, its event files, a later stage) share it
    instead of fitting again; a test that changes a run fits its own."""

    def __init__(self, runs: Path, standin_root: Path) -> None:
        self.runs, self.standin_root = runs, standin_root
        self.done: dict[tuple[str, ...], Path] = {}

    def __call__(self, config: Path, *arguments: str) -> Path:
        import cli

        key = (config.stem, *arguments)
        if key not in self.done:
            argv = ["fit", "--config", str(config), *self.prerequisites(config), *arguments]
            fit = cli.main(smoke_argv(argv, self.standin_root, self.runs))
            self.done[key] = Path(fit.trainer.log_dir)
        return self.done[key]

    def prerequisites(self, config: Path) -> list[str]:
        """The arguments that point ``config`` to the runs it reads (``runs/<config>`` values), fitted."""
        result = []
        for key, name in prerequisites(config).items():
            result += [f"--{key}", str(self(CONFIGS / f"{name}.yaml").parent)]
        return result


@pytest.fixture(scope="session")
def fitted_runs(tmp_path_factory: pytest.TempPathFactory, standin_root: Path) -> FittedRuns:
    return FittedRuns(tmp_path_factory.mktemp("fitted_runs"), standin_root)


@pytest.fixture(scope="session")
def prerequisite_runs(fitted_runs: FittedRuns):
    """``arguments(config)``: the arguments that point ``config`` to the runs it reads, each fitted once per
    session (:class:`FittedRuns`), prerequisites of prerequisites first."""
    return fitted_runs.prerequisites
