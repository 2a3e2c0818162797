"""Loading official code from a local checkout without running its scripts: a module by path, or only the named
top-level functions and classes of a script (whose module level would parse arguments and start training)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


def restore_numpy_aliases() -> None:
    """``np.int`` / ``np.float`` / ``np.bool``, removed in NumPy 1.24, which official code of that time uses."""
    for name, value in (("int", int), ("float", float), ("bool", bool)):
        if name not in np.__dict__:
            setattr(np, name, value)


def load_module(path: Path, name: str, package_root: Path | None = None) -> ModuleType:
    """Import ``path`` as module ``name`` (``package_root`` on ``sys.path`` for its own relative imports)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not in the official checkout (is --official the repository's root?)"
        )
    if package_root is not None and str(package_root) not in sys.path:
        sys.path.insert(0, str(package_root))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_definitions(path: Path, names: list[str], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute only the top-level ``def`` / ``class`` statements called ``names`` of ``path`` in ``namespace``
    (which must provide what they use at call time, e.g. ``np``, ``torch``, a global ``args``)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not in the official checkout (is --official the repository's root?)"
        )
    tree = ast.parse(path.read_text())
    chosen = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
    missing = set(names) - {n.name for n in chosen}
    if missing:
        raise ValueError(f"{path} defines no {sorted(missing)} (another version of the official code?)")
    exec(compile(ast.Module(body=chosen, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def git_commit(folder: Path) -> str:
    """The checkout's commit (short), or "unknown" outside a git checkout."""
    result = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() or "unknown"
