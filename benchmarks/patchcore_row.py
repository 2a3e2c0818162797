"""The PatchCore row of ``make bench-peers``: ours beside anomalib's and the official PatchCore
(amazon-science/patchcore-inspection) on one stand-in category, each side in its own process and venv
(``benchmarks/patchcore_peer.py`` runs one side), under the protocol of ``benchmarks/timing.py``, and only after
every run is shown to have done the same work."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from official_parity.loading import git_commit  # noqa: E402

from benchmarks.patchcore_peer import CORESET_RATIO, PHASES, coreset_projection_dim  # noqa: E402
from benchmarks.timing import MIN_RUNS, PROTOCOL, Timings, alternate, compare  # noqa: E402

ANOMALIB = ("torch==2.14.1", "torchvision==0.29.1", "anomalib==2.7.0")
OFFICIAL_PATCHCORE = (
    "torch==2.14.1",
    "torchvision==0.29.1",
    "timm",
    "faiss-cpu",
    "scipy",
    "scikit-learn",
    "tqdm",
)
PEER_BACKBONE, PEER_LAYERS = "tf_efficientnet_lite0", (2, 3)


def ensure_venv(venv: Path, packages: tuple[str, ...]) -> Path:
    """The venv's python, after creating the venv and installing ``packages`` (with this machine's torch) if
    needed."""
    python = venv / "bin" / "python"
    if not python.is_file():
        print(f"creating {venv} with {' '.join(packages)} (minutes, several GB) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def peer_result(python: Path, side: str, arguments: list[str]) -> dict:
    """Run one side of benchmarks/patchcore_peer.py and read its PEER_RESULT line."""
    script = REPO / "benchmarks" / "patchcore_peer.py"
    done = subprocess.run([str(python), str(script), side, *arguments], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("PEER_RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{script} {side} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("PEER_RESULT "))


class UnequalWorkError(RuntimeError):
    """The sides of a row did not do the same work (images, bank, projection): their times cannot be compared."""


def check_equal_work(results: dict[str, dict], patches_per_image: int, ratio: float) -> None:
    """Every run of every side saw the same training images and kept bank = ceil(ratio x images x patches)
    patches, and its coreset projected to the same dimension."""
    for key in ("images", "projection_dim", "bank"):
        values = {side: result[key] for side, result in results.items()}
        if len(set(values.values())) != 1:
            raise UnequalWorkError(f"the PatchCore sides differ in {key}: {values}")
    images = next(iter(results.values()))["images"]
    expected = math.ceil(ratio * images * patches_per_image)
    if next(iter(results.values()))["bank"] != expected:
        raise UnequalWorkError(
            f"bank of {next(iter(results.values()))['bank']} patches, expected ceil({ratio} x {images} images x "
            f"{patches_per_image} patches) = {expected}"
        )


def patchcore_rows(
    venv: Path,
    official: Path | None = None,
    official_venv: Path | None = None,
    category: str = "brick",
    runs: int = MIN_RUNS,
    warmups: int = 1,
) -> list[str]:
    """Our PatchCore beside anomalib's and, given its checkout and venv, the official one on one category of the
    MVTec-layout stand-in (40 normal training images, 25 test images at 128 px), all on the packaged ImageNet
    EfficientNet-Lite0 weights (one file, saved here from the package), layers 2 and 3 (blocks.2 + blocks.4).

    Each side runs in its own process: ``warmups`` untimed rounds, then ``runs`` rounds, the sides alternating
    (``benchmarks/timing.py``); the table gives each side's median fit with its min-max spread, and the memory
    of its median run. Before any number is written, :func:`check_equal_work` asserts that every run saw the same
    images, kept the same bank and projected to the same dimension.

    anomalib's fits were bimodal on the same inputs with a random ResNet-18 (three runs in a row took 21.8, 2.4
    and 22.0 s, the slow ones raising the peak by about 6.9 GB in the coreset phase): each k-center step allocates
    a fresh (patches x projected dims) difference in ``KCenterGreedy.update_distances`` and whether glibc reuses
    that block or maps fresh pages depends on its heap state (``python benchmarks/stack_at_rss.py
    benchmarks/patchcore_peer.py anomalib ...`` with the anomalib venv's python traced it to that line; with
    ``MALLOC_MMAP_THRESHOLD_=65536`` four of four runs peaked at about 1 GB). The spread shows it when it
    happens."""
    import timm

    from datamodules.standins.mvtec import write_mvtec_standin
    from lightning_modules.components.packaged_weights import packaged_state_dict

    sides = {"anomalib 2.7.0": ("anomalib", ensure_venv(venv, ANOMALIB))}
    if official is not None and official_venv is not None:
        sides[f"official {git_commit(official)}"] = (
            "official",
            ensure_venv(official_venv, OFFICIAL_PATCHCORE),
        )
    sides["ours"] = ("ours", Path(sys.executable))
    features = timm.create_model(PEER_BACKBONE, pretrained=False, features_only=True, out_indices=PEER_LAYERS)
    names, stride = features.feature_info.module_name(), features.feature_info.reduction()[0]
    config = timm.create_model(PEER_BACKBONE, pretrained=False).pretrained_cfg
    size = 128
    patches = (size // stride) ** 2
    with tempfile.TemporaryDirectory(prefix="rvl_peers_") as scratch:
        root = write_mvtec_standin(Path(scratch) / "data", size="small", seed=0)
        weights = Path(scratch) / f"{PEER_BACKBONE}.pth"
        torch.save(packaged_state_dict(PEER_BACKBONE), weights)
        images = len(list((root / category / "train" / "good").iterdir()))
        arguments = [
            *("--root", str(root), "--category", category, "--backbone", PEER_BACKBONE),
            *("--weights", str(weights), "--layers", ",".join(names)),
            *("--layer_indices", ",".join(map(str, PEER_LAYERS))),
            *("--mean", *map(str, config["mean"]), "--std", *map(str, config["std"])),
            *("--projection_dim", str(coreset_projection_dim(images * patches))),
            *(("--code", str(official)) if official is not None else ()),
        ]
        counter = itertools.count()

        def side_call(side: str, python: Path):
            return lambda: peer_result(
                python, side, [*arguments, "--out", str(Path(scratch) / side / str(next(counter)))]
            )

        results = alternate({name: side_call(*side) for name, side in sides.items()}, runs, warmups)
    for index in range(runs):
        check_equal_work({name: results[name][index] for name in sides}, patches, CORESET_RATIO)
    fits = {name: Timings(tuple(r["fit_seconds"] for r in results[name])) for name in sides}
    median_run = {
        name: min(results[name], key=lambda r: abs(r["fit_seconds"] - fits[name].median)) for name in sides
    }
    first = median_run["ours"]
    rows = [
        f"PatchCore, stand-in category `{category}`, {size} px, ImageNet {PEER_BACKBONE} (the packaged weights, one "
        f"file for every side), {' + '.join(names)}, {first['images']} training images, coreset "
        f"{CORESET_RATIO:.0%} = {first['bank']:,} of {first['images'] * patches:,} patches, coreset projection "
        f"{first['projection_dim']} dims (anomalib's own choice for that many patches, given to the others), each "
        f"side in its own process; fit s: {PROTOCOL.format(runs=runs)}; the other columns come from each side's "
        "median run:",
        "",
        "| | fit s | peak RSS MiB | bank patches | image AUROC % | pixel AUROC % |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {fits[name].cell(digits=1)} | {r['peak_rss_mib']:.0f} | {r['bank']:,} | "
            f"{r['image_auroc']:.1f} | {r['pixel_auroc']:.1f} |"
            for name, r in median_run.items()
        ),
        "",
        "Fit: "
        + "; ".join(
            f"beside {name}, {compare(fits['ours'], fits[name], name.split()[0])}"
            for name in sides
            if name != "ours"
        )
        + ".",
        "",
        "What each fit does beyond the shared work: ours and anomalib run their validation over the 25 test images "
        "inside the fit, so the official side is timed over its fit plus its predict on them; the official code "
        "embeds patches in 1,024 dimensions (its default) where ours and anomalib keep the layers' 152 channels, "
        "and scores with one neighbour and FAISS (ours and anomalib re-weight by 9 neighbours).",
        "",
        "Where the peak RSS was set (MiB it rose in each phase of that fit; start-up = imports, model and data "
        "built; coreset = from the validation's start, where each builds its bank, to its first batch; for the "
        "official code, the coreset sampler's call, and validation = its predict):",
        "",
        "| | " + " | ".join(PHASES) + " |",
        "|---|" + "---:|" * len(PHASES),
        *(
            f"| {name} | " + " | ".join(_rise(r, phase) for phase in PHASES) + " |"
            for name, r in median_run.items()
        ),
    ]
    return rows


def _rise(result: dict, phase: str) -> str:
    rise = (result.get("peak_rise_mib") or {}).get(phase)
    # a peak only rises: a reading below the last one is the MiB conversion's float noise, not a fall ("-0")
    return "—" if rise is None else f"{max(rise, 0.0):,.0f}"
