"""The text-guided generation runs of ``make demo-tgi-ad``: what they are named, what each wrote
(``generated/generation.json``), whether its diversity gate failed, and their table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demo_anomaly import weights_tag
from demo_common import newest_run_file

REGIMES = {"one-shot": "1", "few-shot (4)": "4"}


def newest_generation_json(generated: str):
    """generation.json of the generation run folder ``generated`` points to."""
    run, name = generated.rsplit("/", 1)
    found = newest_run_file(run, name, "generated/generation.json")
    if found is None:
        raise FileNotFoundError(
            f"{generated}: no generated/generation.json (the generation run did not finish)"
        )
    return found


def gate_failures(generated: list[str]) -> list[str]:
    """The generation runs among ``generated`` whose diversity gate failed, each with its two ratios (a one-shot
    run's gate is "not judged": one real normal gives no spread to compare with, and it does not count)."""
    failed = []
    for folder in generated:
        summary = json.loads(newest_generation_json(folder).read_text())
        if str(summary.get("gate", "")).startswith("fails"):
            failed.append(
                f"{folder.rsplit('/', 1)[-1]} (spread ratio {summary['spread_ratio']:.3f}, sharpness ratio "
                f"{summary['sharpness_ratio']:.3f})"
            )
    return failed


def generation_run(category: str, shots: str, seed: int, weights: str = "random") -> str:
    return f"demo_tgi_generate_{category}_{shots}shot_seed{seed}{weights_tag(weights)}"


def generation_json(
    runs_dir: str, category: str, shots: str, seed: int, weights: str = "random"
) -> Path | None:
    """The newest finished generation.json of one (category, shots, seed) generation run, or None."""
    return newest_run_file(
        runs_dir, generation_run(category, shots, seed, weights), "generated/generation.json"
    )


def prior_run(weights: str) -> str:
    """The generator prior's run, one per feature network (its feature loss goes through it)."""
    return f"demo_tgi_prior{weights_tag(weights)}"


def generation_table(args: argparse.Namespace) -> list[str]:
    """What each generation run kept, and how far its images lie from their source and from each other (LPIPS-style
    feature distance, ``lightning_modules/tgi_ad/diversity.py``; the real normals' spread is the scale)."""
    lines = [
        "**generated normals** (last round; distances: LPIPS-style through the generator's feature network)",
        "",
        "| regime | category | seed | kept / candidates | kept per source | outliers | to source | between samples | "
        "between real normals | spread ratio | sharpness ratio | gate |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for regime, shots in ((r, REGIMES[r]) for r in args.regimes):
        for category in args.categories:
            for seed in args.seeds:
                found = generation_json(args.runs_dir, category, shots, seed, args.weights)
                if found is None:
                    lines.append(f"| {regime} | {category} | {seed} |" + " — |" * 9)
                    continue
                g = json.loads(found.read_text())
                cells = [
                    f"{g.get(k, float('nan')):.3f}"
                    for k in (
                        "source_distance",
                        "diversity",
                        "normal_diversity",
                        "spread_ratio",
                        "sharpness_ratio",
                    )
                ]
                per_source = " ".join(map(str, g.get("kept_per_source", []))) or "—"
                lines.append(
                    f"| {regime} | {category} | {seed} | {g['kept']} / {g['candidates']} | {per_source} | "
                    f"{g['outliers']} | "
                    + " | ".join(c.replace("nan", "—") for c in cells)
                    + f" | {g.get('gate', '—')} |"
                )
    return [*lines, ""]
