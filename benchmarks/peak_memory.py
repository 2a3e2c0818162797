"""Peak resident memory of one smoke-size ``fit`` per method config, each in its own process (so one method's
allocations cannot hide another's). On a GPU machine the same script also reports peak CUDA memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.config_introspection import offline_smoke_arguments, prerequisites

REPO = Path(__file__).resolve().parents[1]

# the child reads its own peak (VmHWM): ru_maxrss there would be the parent's, kept across exec
_CHILD = r"""
import json, sys, torch
sys.argv = ["cli.py", *sys.argv[1:]]
import cli
from benchmarks.process_memory import peak_rss_mib
cli.main(sys.argv[1:])
peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
print("PEAK " + json.dumps({"rss_mib": peak_rss_mib(), "cuda_mib": peak_cuda}))
"""


def peak_memory(config: Path, root: Path, runs: Path) -> dict[str, float | None]:
    """Peak RSS (MiB) and peak CUDA allocation (MiB, or None) of ``fit`` with the smoke overlay."""
    args = [
        "fit",
        "--config",
        str(config),
        "--config",
        str(REPO / "configs" / "smoke.yaml"),
        "--data.init_args.root",
        str(root),
        "--runs_dir",
        str(runs),
        "--trainer.enable_progress_bar",
        "false",
    ]
    args += offline_smoke_arguments(config)  # no weight download, tiny widths where the model says so
    for key, name in prerequisites(config).items():  # the run it reads was measured before it (in_run_order)
        args += [f"--{key}", str(runs / name)]
    return measured_cli(args, f"{config.name}: fit")


def measured_cli(args: list[str], what: str, timeout: float | None = None) -> dict[str, float | None]:
    """``python cli.py <args>`` in a child process: its peak RSS and peak CUDA allocation (MiB); a RuntimeError
    naming ``what`` with the end of its stderr when it fails (subprocess.TimeoutExpired past ``timeout`` s)."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    peak = [line for line in result.stdout.splitlines() if line.startswith("PEAK ")]
    if result.returncode or not peak:
        raise RuntimeError(f"{what} failed\n{result.stderr[-3000:]}")
    return json.loads(peak[-1][5:])
