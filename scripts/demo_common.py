"""What the demo scripts share: run a cli command in-process (printing it), and write the report."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from readme_blocks import replace_block  # noqa: E402

import cli  # noqa: E402


def cli_run(argv: list[str]):
    """``python cli.py <argv>`` in this process; the command is printed first so a reader can rerun it."""
    print("\n$ python cli.py " + " ".join(argv), flush=True)
    return cli.main(argv)


def option(argv: list[str], name: str, default: str) -> str:
    """The value that follows ``name`` in ``argv`` (the last occurrence), else ``default``."""
    positions = [i for i, a in enumerate(argv[:-1]) if a == name]
    return argv[positions[-1] + 1] if positions else default


def newest_run_file(runs_dir: str | Path, run: str, name: str, required: bool = False) -> Path | None:
    """``<runs_dir>/<run>/version_*/<name>`` of the newest finished version; None (or, when ``required``, a
    FileNotFoundError saying to run the demo) when there is none."""
    found = sorted((Path(runs_dir) / run).glob(f"version_*/{name}"), key=lambda f: f.stat().st_mtime)
    if not found and required:
        raise FileNotFoundError(f"no {name} under {Path(runs_dir) / run}: run the demo without --report_only")
    return found[-1] if found else None


def pop_flag(argv: list[str], flag: str) -> bool:
    """Remove every ``flag`` from ``argv`` (the demo's own switch, not a cli argument); whether it was there."""
    found = flag in argv
    argv[:] = [a for a in argv if a != flag]
    return found


def write_report(markdown: str, runs_dir: str | Path, name: str, readme: str | None = None) -> Path:
    """Write ``<runs_dir>/<name>.md``, print it with its path, and return the path; with ``readme`` (a path in
    the repository) also put it between that README's ``<!-- demo:<name> -->`` markers, so the README shows
    what this run measured and never a hand copy."""
    out = Path(runs_dir) / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    print("\n" + markdown + f"\n(written to {out})")
    if readme is not None:
        replace_block(REPO / readme, f"demo:{name}", markdown)
        print(f"(and to {readme})")
    return out
