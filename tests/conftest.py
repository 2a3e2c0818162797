"""Shared fixtures: tiny stand-ins built once per session, in-process CLI runs, and config introspection."""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def config_classes(config: str | Path) -> dict[str, type]:
    """The model and data classes a method config names (``{}`` for an overlay)."""
    content = yaml.safe_load(Path(config).read_text()) or {}
    classes = {}
    for key in ("model", "data"):
        class_path = (content.get(key) or {}).get("class_path")
        if class_path:
            module, _, name = class_path.rpartition(".")
            classes[key] = getattr(importlib.import_module(module), name)
    return classes


def accepted_arguments(cls: type) -> set[str]:
    """Constructor arguments of ``cls``, following ``**kwargs`` up the class hierarchy (as jsonargparse does)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        names |= {
            n
            for n, p in parameters.items()
            if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    return names


def takes_pretrained(config: str | Path) -> bool:
    """Whether the config's model loads pretrained weights (offline runs must switch that off)."""
    model = config_classes(config).get("model")
    return model is not None and "pretrained" in accepted_arguments(model)


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
            offline = (
                ["--model.init_args.pretrained", "false"]
                if configs and takes_pretrained(argv[configs[0] + 1])
                else []
            )
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
