"""Config mistakes in one line: jsonargparse's many-line error becomes the full key, what is wrong, where it was
given (the command line or the last config file that sets it) and the nearest valid keys or classes.

Used by ``cli.py``'s parser; ``RVL_TRACEBACK=1`` shows the full text behind it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import yaml


class ConfigError(ValueError):
    """A config mistake: the full key, what is wrong, where it was given and the nearest valid keys."""


KINDS = {
    "LightningModule": pl.LightningModule,
    "LightningDataModule": pl.LightningDataModule,
    "Callback": pl.Callback,
}
EXPECTED = {"model": "LightningModule", "data": "LightningDataModule", "trainer.callbacks": "Callback"}


def explain_config_error(text: str, parsers: dict[str, Any], argv: list[str]) -> str:
    """jsonargparse's many-line error as one line: the key, what is wrong, where, and the nearest valid keys."""
    configs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--config", "-c")]
    if missing := [p for p in configs if not Path(p).is_file()]:
        return f"--config {missing[0]}: no such file (the method configs are in configs/)"
    for path in configs if "Problems parsing config" in text else []:
        try:
            yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as error:
            line = f" line {error.problem_mark.line + 1}" if getattr(error, "problem_mark", None) else ""
            return f"{path}{line} is not valid YAML: {getattr(error, 'problem', None) or error}"
    subcommand = next((a for a in argv if a in parsers), "fit")
    if unknown := re.search(r"does not accept option '([^']+)'|arguments: --([\w.]+)", text):
        keys = [k[2:] for k in parsers[subcommand]._option_string_actions if k.startswith("--")]
        return _unknown_key(unknown[1] or unknown[2], keys, configs, argv)
    top = (re.search(r'Parser key "([^"]+)"', text) or [None, "?"])[1]
    given = (re.search(r"Given value: (.*)", text) or [None, "?"])[1]
    if problem := re.search(r"Problem with given class_path '([^']+)':\n\s*(.+)", text):
        class_path, reason = problem[1], problem[2].strip()
        if option := re.match(r"Option '([^']+)' is not accepted", reason):
            return _unknown_key(f"{top}.init_args.{option[1]}", _init_keys(class_path, top), configs, argv)
        if nested := re.search(r'Parser key "([^"]+)":\n\s*Expected (.+?)\. Got value: (.*)', text):
            top, text, given = f"{top}.init_args.{nested[1]}", nested[2], nested[3]
        elif "has no attribute" in reason or "No module named" in reason:
            return f"{top}: class_path {class_path!r} does not import ({reason}){_nearest_class(class_path)}"
    if "does not correspond to a subclass of" in text:
        module, _, name = given.rpartition(".")
        cls = getattr(importlib.import_module(module), name, None)
        kind = next((k for k, base in KINDS.items() if inspect.isclass(cls) and issubclass(cls, base)), None)
        return f"{top}: {given!r} is not a {EXPECTED.get(top, 'class of that kind')}" + (
            f" (it is a {kind})" if kind else ""
        )
    if literal := re.search(r"typing\.Literal\[([^\]]*)\]", text):
        choices = ", ".join(re.findall(r"'([^']*)'", literal[1])) + (" or null" if "NoneType" in text else "")
        return f"{top}{_where(top, configs, argv)}: expected one of {choices}, got {given!r}"
    if expected := re.findall(r"<class '([\w.]+)'>", re.sub(r"Given value type.*", "", text)):
        types = " or ".join(dict.fromkeys("null" if t == "NoneType" else t for t in expected))
        return f"{top}{_where(top, configs, argv)}: expected {types}, got {given!r}"
    return f"{top}: " + " ".join(line.strip() for line in text.splitlines()[1:3])


def _where(key: str, configs: list[str], argv: list[str]) -> str:
    """Where ``key`` was given: " (on the command line)", else " (in <the last config file that sets it>)"."""
    for path in [] if any(a.split("=")[0] == f"--{key}" for a in argv) else reversed(configs):
        node: Any = yaml.safe_load(Path(path).read_text())
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return f" (in {path})"
    return " (on the command line)"


def _unknown_key(key: str, valid: list[str], configs: list[str], argv: list[str]) -> str:
    """ "<key> (where): unknown key; did you mean ...?" among the valid keys beside it, else its top-level part."""
    siblings = [k for k in valid if k.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]] or valid
    near = difflib.get_close_matches(key, siblings, n=2, cutoff=0.8)
    tops = sorted({k.split(".")[0] for k in valid})
    near = near or difflib.get_close_matches(key.split(".")[0], tops, n=1, cutoff=0.6)
    return f"{key}{_where(key, configs, argv)}: unknown key" + (
        f"; did you mean {' or '.join(near)}?" if near else ""
    )


def _init_keys(class_path: str, top: str) -> list[str]:
    """``<top>.init_args.<name>`` for every argument the class (and, through ``**kwargs``, its bases) accepts."""
    module, _, name = class_path.rpartition(".")
    names: list[str] = []
    for cls in inspect.getmro(getattr(importlib.import_module(module), name)):
        parameters = (
            list(inspect.signature(cls.__init__).parameters.values()) if "__init__" in vars(cls) else []
        )
        names += [p.name for p in parameters[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return [f"{top}.init_args.{n}" for n in dict.fromkeys(names)]


def _nearest_class(class_path: str) -> str:
    """ "; did you mean ...?" among the classes of the named module, or the modules of its package."""
    module, _, name = class_path.rpartition(".")
    try:
        classes = [n for n, c in vars(importlib.import_module(module)).items() if inspect.isclass(c)]
        near = [f"{module}.{n}" for n in difflib.get_close_matches(name, classes, n=2, cutoff=0.75)]
    except ImportError:
        package = importlib.import_module(class_path.split(".")[0])
        modules = [
            m.name for m in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + ".")
        ]
        near = [f"{m}.{name}" for m in difflib.get_close_matches(module, modules, n=2, cutoff=0.9)]
    return f"; did you mean {' or '.join(near)}?" if near else ""
