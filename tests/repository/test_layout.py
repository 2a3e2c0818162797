"""The repository's shape, checked: a folder and three files per method, plain-torch networks and components,
datamodules that know no model, docs that stand alone, files small enough to read."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

SHARED = {"routines", "metrics", "components", "post_processing", "outputs"}
METHODS = sorted(
    p.name
    for p in (REPO / "lightning_modules").iterdir()
    if p.is_dir() and p.name not in SHARED | {"__pycache__"}
)


def python_files(*folders: str) -> list[Path]:
    return sorted(
        f for folder in folders for f in (REPO / folder).rglob("*.py") if "__pycache__" not in f.parts
    )


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (``import a.b`` and ``from a.b import c`` give ``a.b``), at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_every_method_folder_has_networks_module_and_readme() -> None:
    assert {"patchcore", "reverse_distillation", "cflow", "efficientad", "classification", "tvqvae"} <= set(
        METHODS
    )
    for method in METHODS:
        folder = REPO / "lightning_modules" / method
        missing = [
            name for name in ("networks.py", "module.py", "README.md") if not (folder / name).is_file()
        ]
        assert not missing, f"lightning_modules/{method} lacks {missing}"


@pytest.mark.parametrize(
    "path",
    python_files("lightning_modules/components")
    + sorted((REPO / "lightning_modules").glob("*/networks.py"))
    + sorted((REPO / "lightning_modules").glob("*/*_networks.py")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_networks_and_components_are_plain_torch(path: Path) -> None:
    lightning = {m for m in imported_modules(path) if m.split(".")[0] in ("lightning", "pytorch_lightning")}
    assert not lightning, f"{path.relative_to(REPO)} imports {lightning}"


def test_datamodules_know_no_model_and_models_know_only_the_batch_contract() -> None:
    for path in python_files("datamodules"):
        models = {m for m in imported_modules(path) if m.startswith("lightning_modules")}
        assert not models, f"{path.relative_to(REPO)} imports {models}"
    for path in python_files("lightning_modules"):
        data = {m for m in imported_modules(path) if m.startswith("datamodules")} - {"datamodules.batch"}
        assert not data, f"{path.relative_to(REPO)} imports {data} (only datamodules.batch is allowed)"


def test_every_task_base_is_a_routine_on_the_shared_base() -> None:
    from lightning_modules.routines.base import EvaluationRoutine

    package = importlib.import_module("lightning_modules.routines")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"lightning_modules.routines.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and issubclass(cls, EvaluationRoutine)
                and cls is not EvaluationRoutine
            ):
                assert name.endswith("Routine"), f"{module.__name__}.{name} should be named ...Routine"
                found.append(name)
    assert {
        "BinaryDetectionRoutine",
        "SpoofDetectionRoutine",
        "AnomalyDetectionRoutine",
        "ClassificationRoutine",
        "TopicModelRoutine",
    } <= set(found)


def tracked_text_files() -> list[Path]:
    import subprocess

    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / f for f in listed.split() if (REPO / f).is_file()]


def test_nothing_cites_files_users_do_not_have() -> None:
    outside = ("METHODS" + ".md", "DESIGN" + ".md")  # split, so this file does not cite them either
    citing = [
        str(path.relative_to(REPO))
        for path in tracked_text_files()
        if path.suffix in (".py", ".md", ".yaml", ".toml", ".sh", ".sbatch", "")
        and any(o in path.read_text(errors="ignore") for o in outside)
    ]
    assert not citing, f"these cite files outside the repository: {citing}"


def test_no_source_file_is_over_400_lines_and_the_readme_is_the_front_door() -> None:
    long = [
        f"{path.relative_to(REPO)} ({n})"
        for path in python_files("lightning_modules", "datamodules", "callbacks", "scripts", "benchmarks")
        + [REPO / "cli.py"]
        if (n := len(path.read_text().splitlines())) > 400
    ]
    assert not long, f"over 400 lines: {long}"
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 300
    for method in METHODS:  # the methods table links every method's own README
        assert f"lightning_modules/{method}/README.md" in readme, f"README.md does not link {method}'s README"


def test_every_file_a_readme_names_exists() -> None:
    """A README that points at `tests/...py`, `scripts/...py`, `configs/...yaml` (or a method's file) names a
    file that is there, so a reader who follows it finds it."""
    named = re.compile(
        r"`((?:tests|scripts|configs|benchmarks|datamodules|lightning_modules|callbacks)/[\w/.-]+\.(?:py|yaml|md|sh))`"
    )
    missing = [
        f"{readme.relative_to(REPO)}: {path}"
        for readme in tracked_text_files()
        if readme.name == "README.md"
        for path in named.findall(readme.read_text())
        if not (REPO / path).is_file() and not (readme.parent / path).is_file()
    ]
    assert not missing, f"named in a README but not in the repository: {missing}"


# ------------------------------------------------------------------------------------ one door, one direction
def datamodule_reads(path: Path, callback: bool) -> list[str]:
    """Where a file reads the trainer's datamodule other than through ``routines/base.py``: ``x.datamodule``
    (a callback may only hand ``trainer.datamodule`` to ``data_as`` as it is), ``x.datamodule.y``,
    ``getattr(x, "datamodule")``, ``getattr(x.datamodule, ...)`` and the old ``from_data(...)``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        line = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute):
            if node.attr == "datamodule" and not callback:
                found.append(f"{line} .datamodule")
            if isinstance(node.value, ast.Attribute) and node.value.attr == "datamodule":
                found.append(f"{line} .datamodule.{node.attr}")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "from_data":
                found.append(f"{line} from_data(")
            if name == "getattr" and node.args:
                target = node.args[0]
                named = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
                if named == ["datamodule"] or getattr(target, "attr", None) == "datamodule":
                    found.append(f"{line} getattr(... datamodule ...)")
    return found


def test_models_reach_their_data_through_one_door() -> None:
    """``EvaluationRoutine.split_info`` / ``data_as`` / ``data_if`` (``routines/base.py``) are the only way from
    a model to its datamodule, so every ask is declared in ``datamodules/batch.py`` and a renamed attribute fails
    a test; callbacks check the datamodule once with ``data_as`` and keep what it returns."""
    door = REPO / "lightning_modules" / "routines" / "base.py"
    reads = [
        read
        for path in python_files("lightning_modules")
        if path != door
        for read in datamodule_reads(path, callback=False)
    ] + [read for path in python_files("callbacks") for read in datamodule_reads(path, callback=True)]
    assert not reads, f"read the datamodule outside the one door: {reads}"


def test_no_method_folder_imports_another() -> None:
    """Shared parts live in ``components/`` (or routines, metrics, outputs), never in another method's folder."""
    crossing = [
        f"{path.relative_to(REPO)} imports {module}"
        for method in METHODS
        for path in python_files(f"lightning_modules/{method}")
        for module in imported_modules(path)
        if module.startswith("lightning_modules.") and module.split(".")[1] in set(METHODS) - {method}
    ]
    assert not crossing, crossing


def repository_modules() -> dict[str, Path]:
    """Every Python file of the code folders (and cli.py) by its dotted module name."""
    found = {"cli": REPO / "cli.py"}
    for path in python_files("lightning_modules", "datamodules", "callbacks", "scripts", "benchmarks"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """File -> the repository files it imports, at any depth of the file (a function's import counts): ``from a
    import b`` counts ``a.b`` when that is a file, and a script's ``import sibling`` its sibling in scripts/."""
    modules = repository_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if name.startswith("scripts.") and f"scripts.{target}" in modules:
                    target = f"scripts.{target}"
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def test_no_two_files_import_each_other_even_through_others() -> None:
    """No import loop between files, however long and wherever the import sits (a function's too)."""
    graph = import_graph()
    loops = []
    for start in graph:  # a loop through ``start``: a path from one of its imports back to it
        stack, seen = [(m, [start, m]) for m in graph[start]], set()
        while stack:
            here, path = stack.pop()
            if here == start:
                loops.append(" -> ".join(path))
                break
            if here not in seen:
                seen.add(here)
                stack += [(m, [*path, m]) for m in graph[here]]
    assert not loops, f"import loops: {loops}"


def test_scripts_use_benchmarks_and_never_the_reverse() -> None:
    """Commands (scripts/) import the measuring code and records (benchmarks/); benchmarks import no script."""
    graph = import_graph()
    backwards = [
        f"{m} imports {t}"
        for m, ts in graph.items()
        if m.startswith("benchmarks")
        for t in ts
        if t.startswith("scripts")
    ]
    assert not backwards, backwards
