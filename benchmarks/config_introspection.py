"""What a YAML in configs/ names: method config or overlay, its classes, the arguments they accept.

Shared by the tests (which configs to run, which overlays apply, when to add ``pretrained false`` offline) and
the benchmarks (which configs to measure), so both read configs the same way jsonargparse does.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def is_method_config(path: str | Path) -> bool:
    """A method config names its model class; an overlay (smoke, demo) only changes arguments."""
    content = yaml.safe_load(Path(path).read_text()) or {}
    return isinstance(content.get("model"), dict) and "class_path" in content["model"]


def method_configs() -> list[Path]:
    """Every method config directly under configs/ (overlays in configs/env/ are not methods)."""
    return [p for p in sorted(CONFIGS.glob("*.yaml")) if is_method_config(p)]


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


def takes_imagenet_switch(config: str | Path) -> bool:
    """Whether ``--imagenet`` applies to the config's model (its paper starts from ImageNet weights)."""
    from lightning_modules.components.imagenet_switch import ImageNetSwitchError, imagenet_overrides

    model = config_classes(config).get("model")
    content = yaml.safe_load(Path(config).read_text()) or {}
    init_args = (content.get("model") or {}).get("init_args") or {}
    try:
        imagenet_overrides(model, "lite0", init_args)
    except ImageNetSwitchError:
        return False
    return model is not None


def offline_smoke_arguments(config: str | Path, imagenet: bool = True, weights: bool = True) -> list[str]:
    """What a smoke run of ``config`` adds to the smoke overlay: ``--imagenet lite0`` for models whose paper
    starts from ImageNet weights (real weights, no download; ``imagenet=False``: ``pretrained false`` instead),
    ``pretrained false`` for other models that take it (neither with ``weights=False``: a run from a checkpoint
    rebuilds the model it holds and loads no starting weights), the model class's ``SMOKE_ARGUMENTS`` (tiny
    widths for models whose paper sizes — a 4096-wide GRU — are too big for a CPU test step), and the
    ``SMOKE_ARGUMENTS`` of its last callback (the calibrators' 1,000 optimizer steps, which cost seconds however
    few logits a smoke run has)."""
    model = config_classes(config).get("model")
    if model is None:
        return []
    switched = imagenet and takes_imagenet_switch(config)
    arguments = []
    if weights and switched:
        arguments = ["--imagenet", "lite0"]
    elif weights and takes_pretrained(config):
        arguments = ["--model.init_args.pretrained", "false"]
    for key, value in getattr(model, "SMOKE_ARGUMENTS", {}).items():
        if not (switched and key == model.weights_keys[0]):  # the switch chooses the backbone
            arguments += [f"--model.init_args.{key}", str(value)]
    callbacks = config_callbacks(config)
    if callbacks:  # ``--trainer.callbacks.<key>`` sets the list's last callback only
        for key, value in getattr(callbacks[-1], "SMOKE_ARGUMENTS", {}).items():
            arguments += [f"--trainer.callbacks.{key}", str(value)]
    return arguments


def config_callbacks(config: str | Path) -> list[type]:
    """The classes of the config's ``trainer.callbacks``, in their order."""
    content = yaml.safe_load(Path(config).read_text()) or {}
    classes = []
    for entry in (content.get("trainer") or {}).get("callbacks") or []:
        module, _, name = entry["class_path"].rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    return classes


def prerequisites(config: str | Path) -> dict[str, str]:
    """Model or data arguments that read another config's run (a value ``runs/<config>``, e.g. the advanced
    ViT's ``model.init_args.links_path``), as full keys mapped to that config's name: it must run first, and the
    argument then points to its run folder under whatever runs directory is used."""
    content = yaml.safe_load(Path(config).read_text()) or {}
    found = {}
    for section in ("model", "data"):
        init = (content.get(section) or {}).get("init_args") or {}
        for key, value in init.items():
            if isinstance(value, str) and value.startswith("runs/") and len(value.split("/")) == 2:
                found[f"{section}.init_args.{key}"] = value.split("/")[1]
    return found


def in_run_order(configs: list[Path]) -> list[Path]:
    """``configs`` with every config after the ones whose runs it reads."""
    ordered: list[Path] = []
    pending = list(configs)
    while pending:
        ready = [
            c
            for c in pending
            if all(
                CONFIGS / f"{n}.yaml" in ordered or CONFIGS / f"{n}.yaml" not in pending
                for n in prerequisites(c).values()
            )
        ]
        if not ready:
            raise ValueError(f"configs read each other's runs in a cycle: {[c.name for c in pending]}")
        ordered += ready
        pending = [c for c in pending if c not in ready]
    return ordered
