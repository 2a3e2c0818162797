"""Does the text-guided generator use its codes? Sample finished generation runs at several temperatures.

For each run (a ``configs/tgi_ad_generate.yaml`` run folder) and temperature t, from the run's last checkpoint and
its own real shots (the data arguments of its ``config.yaml``): S samples per shot, z = μ + tσε, and

* **codes changed**: the share of latent cells whose code differs from the code of μ (what the sampling moves);
* **spread ratio** and **sharpness ratio**: the diversity gate of ``lightning_modules/tgi_ad/diversity.py``
  (between samples of one shot over between real shots; variance of the Laplacian, samples over shots);
* **to source**: the distance of each sample to its shot, over the distance between real shots (how far from
  what it was drawn from: a sample unlike its category scores high here however much it varies).

A decoder that renders different codes differently shows a spread that grows with the codes changed; one that
rebuilds its shot from any nearby code shows codes changing and the spread staying flat.

    python scripts/tgi_sampling_sweep.py RUN [RUN ...] [--labels NAME ...] [--temperatures 1 2 4 8]
        [--samples 8] [--seed 0] [--readme]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.readme_blocks import replace_block  # noqa: E402
from datamodules.mvtec import AnomalyImageDataset, MVTecDataModule  # noqa: E402
from lightning_modules.outputs.checkpoints import newest_last_checkpoint  # noqa: E402
from lightning_modules.tgi_ad.diversity import diversity_gate, generation_diversity  # noqa: E402
from lightning_modules.tgi_ad.module import TextGuidedGenerationModule  # noqa: E402

README = Path(__file__).resolve().parents[1] / "lightning_modules" / "tgi_ad" / "README.md"


def newest_version(run: Path) -> Path:
    """The version folder of the newest ``last.ckpt`` under ``run`` (a run folder, or one of its versions)."""
    found = newest_last_checkpoint(run, "**/checkpoints/last.ckpt")
    if found is None:
        raise FileNotFoundError(f"{run}: no version_*/checkpoints/last.ckpt (a finished generation run)")
    return found.parents[1]


def real_shots(version: Path) -> tuple[str, torch.Tensor]:
    """(category, the run's real training shots (N, 3, H, W) as its generator saw them, without augmentation)."""
    arguments = yaml.safe_load((version / "config.yaml").read_text())["data"]["init_args"]
    data = MVTecDataModule(**arguments)
    data.setup("fit")
    records = [r for r in data.datasets["train"].records if r.real]
    shots = AnomalyImageDataset(records, data.eval_transform(), "error")
    return str(data.category), torch.stack([shots[i]["image"] for i in range(len(records))])


def load_generator(version: Path) -> TextGuidedGenerationModule:
    """The run's module from its last checkpoint; its prior is not read again (the weights are all in it)."""
    return TextGuidedGenerationModule.load_from_checkpoint(
        version / "checkpoints" / "last.ckpt", map_location="cpu", prior_path=None, freeze_decoder=False
    ).eval()


@torch.no_grad()
def sweep(
    module: TextGuidedGenerationModule,
    shots: torch.Tensor,
    temperatures: list[float],
    samples: int,
    seed: int,
) -> list[dict[str, float]]:
    """One row per temperature: codes changed, spread ratio, sharpness ratio, to source (see the module doc)."""
    generator = module.generator
    mean, log_variance = generator.encode(shots)
    mean_codes = generator.quantize(mean)[2].repeat_interleave(samples, dim=0)
    mean, log_variance = (t.repeat_interleave(samples, dim=0) for t in (mean, log_variance))
    sources = torch.arange(len(shots)).repeat_interleave(samples)
    rows = []
    for temperature in temperatures:
        torch.manual_seed(seed)
        quantized, _, codes = generator.quantize(generator.sample(mean, log_variance, temperature))
        drawn = generator.decoder(quantized).float()
        diversity = generation_diversity(module._feature_maps, drawn, sources, shots, max_per_source=samples)
        gate = diversity_gate(diversity, drawn, shots)
        rows.append(
            {
                "temperature": temperature,
                "codes_changed": float((codes != mean_codes).float().mean()),
                "spread_ratio": float(gate["spread_ratio"]),
                "sharpness_ratio": float(gate["sharpness_ratio"]),
                "to_source": diversity["source_distance"] / diversity["normal_diversity"],
            }
        )
    return rows


def table(results: list[tuple[str, str, list[dict[str, float]]]], command: str) -> str:
    lines = [
        f"`{command}`:",
        "",
        "| run | category | t | codes changed | spread ratio | sharpness ratio | to source / between shots |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, category, rows in results:
        lines += [
            f"| {label} | {category} | {r['temperature']:g} | {r['codes_changed']:.2f} | {r['spread_ratio']:.3f} | "
            f"{r['sharpness_ratio']:.3f} | {r['to_source']:.3f} |"
            for r in rows
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="generation run folders")
    parser.add_argument("--labels", nargs="+", help="a name per run for the table (default: the folder's)")
    parser.add_argument("--temperatures", nargs="+", type=float, default=[1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--samples", type=int, default=8, help="samples per shot")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--readme", action="store_true", help=f"write the table into {README}")
    args = parser.parse_args(argv)
    labels = args.labels or [run.name for run in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit(f"--labels: {len(labels)} names for {len(args.runs)} runs")
    results = []
    for label, run in zip(labels, args.runs, strict=True):
        version = newest_version(run)
        category, shots = real_shots(version)
        rows = sweep(load_generator(version), shots, args.temperatures, args.samples, args.seed)
        results.append((label, category, rows))
    command = shlex.join(
        ["python", "scripts/tgi_sampling_sweep.py", *(sys.argv[1:] if argv is None else argv)]
    )
    markdown = table(results, command)
    print(markdown, flush=True)
    if args.readme:
        replace_block(README, "tgi:sampling", markdown)
    return markdown


if __name__ == "__main__":
    main()
