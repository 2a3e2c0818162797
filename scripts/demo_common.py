"""What the demo scripts share: run a cli command in-process (printing it), and write the report."""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cli  # noqa: E402
from benchmarks.readme_blocks import replace_block  # noqa: E402


def cli_run(argv: list[str]):
    """``python cli.py <argv>`` in this process; the command is printed first so a reader can rerun it."""
    print("\n$ python cli.py " + shlex.join(argv), flush=True)
    return cli.main(argv)


def option(argv: list[str], name: str, default: str) -> str:
    """The value that follows ``name`` in ``argv`` (the last occurrence), else ``default``."""
    positions = [i for i, a in enumerate(argv[:-1]) if a == name]
    return argv[positions[-1] + 1] if positions else default


def run_arguments(
    configs: list[str], options: dict[str, object], run_name: str, runs_dir: str, extra: list[str]
) -> list[str]:
    """One demo run's arguments: each config in turn, then ``options`` (``--key value``), the run's name and
    folder, and last the command line's extra arguments (so they win)."""
    argv = [a for config in configs for a in ("--config", config)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    return [*argv, "--run_name", run_name, "--runs_dir", runs_dir, *extra]


def newest_run_file(runs_dir: str | Path, run: str, name: str, required: bool = False) -> Path | None:
    """``<runs_dir>/<run>/version_*/<name>`` of the newest finished version; None (or, when ``required``, a
    FileNotFoundError saying to run the demo) when there is none."""
    found = sorted((Path(runs_dir) / run).glob(f"version_*/{name}"), key=lambda f: f.stat().st_mtime)
    if not found and required:
        raise FileNotFoundError(f"no {name} under {Path(runs_dir) / run}: run the demo without --report_only")
    return found[-1] if found else None


def scalar_curve(run_dir: Path, tag: str) -> list[float]:
    """``tag`` per logged step, in step order, from the run's TensorBoard events (a later file overrides)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[int, float] = {}
    for file in sorted(run_dir.glob("events.out.tfevents.*")):
        events = EventAccumulator(str(file), size_guidance={"scalars": 0})
        events.Reload()
        if tag in events.Tags()["scalars"]:
            values |= {event.step: event.value for event in events.Scalars(tag)}
    return [values[step] for step in sorted(values)]


def pop_flag(argv: list[str], flag: str) -> bool:
    """Remove every ``flag`` from ``argv`` (the demo's own switch, not a cli argument); whether it was there."""
    found = flag in argv
    argv[:] = [a for a in argv if a != flag]
    return found


def write_report(
    markdown: str,
    runs_dir: str | Path,
    name: str,
    readme: str | None = None,
    record: dict[str, Any] | None = None,
    minutes: float | None = None,
) -> Path:
    """Write ``<runs_dir>/<name>.md``, print it with its path, and return the path. With ``readme`` (a path in the
    repository: the run that documents the method) also put it between that README's ``<!-- demo:<name> -->``
    markers, so the README shows what this run measured and never a hand copy, and write the evidence:
    ``benchmarks/demos/<name>.md`` and ``.json`` (the command, the commit, the date, the minutes, and ``record``,
    e.g. the values each claim was judged on)."""
    out = Path(runs_dir) / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    print("\n" + markdown + f"\n(written to {out})")
    if readme is not None:
        replace_block(REPO / readme, f"demo:{name}", markdown)
        evidence = write_evidence(name, markdown, record or {}, minutes)
        print(f"(and to {readme}, {evidence.relative_to(REPO)} and its .json)")
    return out


def write_evidence(
    name: str,
    markdown: str,
    record: dict[str, Any],
    minutes: float | None,
    folder: Path = REPO / "benchmarks" / "demos",
) -> Path:
    """``benchmarks/demos/<name>.md`` (the table under a line saying how it was made) and ``<name>.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    command = "python " + shlex.join([script_path(sys.argv[0]), *sys.argv[1:]])  # quoted: it can be pasted
    made = {
        "demo": name,
        "command": command,
        "commit": COMMIT_AT_START,
        "date": datetime.date.today().isoformat(),
        "minutes": None if minutes is None else round(minutes, 1),
    }
    took = f", {made['minutes']} min on this machine" if minutes is not None else ""
    (folder / f"{name}.md").write_text(
        f"`{command}` at {made['commit']}, {made['date']}{took}:\n\n{markdown}"
    )
    (folder / f"{name}.json").write_text(json.dumps({**made, **record}, indent=1, sort_keys=True) + "\n")
    return folder / f"{name}.md"


def script_path(argv0: str) -> str:
    """The script as a command run from the repository's root names it (``scripts/demo_x.py``), wherever it was
    started from; a path outside the repository stays as it was given.

    >>> script_path(str(REPO / "scripts" / "demo_mixing.py"))
    'scripts/demo_mixing.py'
    """
    if not argv0:
        return ""
    path = Path(argv0).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else argv0


def git_commit() -> str:
    """HEAD's short hash, with ``+changes`` when the working tree differs from it."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    )
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else "")


# the evidence names the commit (and whether the tree was clean) when the demo started: what it ran. A commit made
# while it runs (an earlier demo's evidence, say) is not.
COMMIT_AT_START = git_commit()
