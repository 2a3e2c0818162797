"""Does a stand-in carry its method's phenomenon, and no shortcut? Run after changing one.

    python scripts/check_standin.py [--image-size 64] [--train 1600] [--epochs 4]    # ForenSynths
    python scripts/check_standin.py --probe lite0 [--probe-size 112]                  # ForenSynths, ImageNet regime
    python scripts/check_standin.py --layout rgbd [--size small]                      # RGB-D anti-spoofing
    python scripts/check_standin.py --layout mvtec [--size small]                     # TGI-AD's gate
    python scripts/check_standin.py --layout mvtec --headroom lite0                   # room above ImageNet features
    python scripts/check_standin.py --layout mvtec --scorer devise                    # the text scorer's knowledge

ForenSynths: builds the seen family's training set and every family's test set in memory, trains one small CNN
on raw pixels and one on the log-magnitude spectrum (same architecture, same seed), and prints ACC / AP per
family. A stand-in worth having shows the raw-pixel CNN near 100 on the seen family and near chance on some
unseen ones, with the spectrum input keeping more of its ranking there (about 3 minutes on 2 CPU cores).
It first scores every group without training by smoothness alone (minus the mean squared Laplacian, "smooth =
fake", the shortcut reconstruction-trained detectors risk); the ``blurred_real`` control shares the seen group's
fakes, and its reals must be told from the seen group's by smoothness (AUC >= 90 %, exit 1 otherwise), so a
detector that calls blur "fake" loses accuracy there.

``--probe lite0``: instead of the two small CNNs, the pretrained regime's check (``forensynths_probe.py``): frozen
ImageNet features (the packaged EfficientNet-Lite0) with a linear probe fitted on the seen family alone must not
already reach near 100 % AP on the unseen families (mean <= 95 %, exit 1 otherwise), or the pretrained-regime
claims could not tell the methods apart.

RGB-D: builds the stand-in and scores every test capture without training (``rgbd_cues.py``): the plane-fit
residual (the shortcut) must not separate genuine captures from any display's spoofs, either way (AUC within
[25, 75] % for every display and pooled), the oracle RGB-depth consistency (the phenomenon) must (AUC >= 90 % for
every display). Prints both per display and exits 1 when a gate fails.

MVTec, ``--headroom lite0``: a one-shot nearest-neighbour score on frozen ImageNet features (``anomaly_headroom.py``)
must leave room per category (image AUROC in [60, 90] %), or no claim about added normal images could be seen.

MVTec, ``--scorer devise``: the CLIP-free text-image scorer (``text_scorer_check.py``) must rank each category's
normal images above the other categories' for that category's prompts (AUROC >= 75 % every category), or its text
term cannot guide the selection.

MVTec (text-guided generation): scores copies, blurred copies and classically augmented copies of each
category's four shots with the generation's own diversity gate (``gate_references.py``): the gate must fail the
first two and pass the third, or it asks for what no generator can give on this stand-in (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datamodules.standins.forensynths import (  # noqa: E402
    BLUR_SIGMA,
    BLURRED_REAL,
    FAMILIES,
    SEEN_FAMILY,
    TRAIN_CATEGORIES,
    gaussian_blur,
)
from datamodules.standins.mvtec import SIZES as MVTEC_SIZES  # noqa: E402
from datamodules.standins.photos import PHOTO_CATEGORIES, load_photo, random_crops  # noqa: E402
from datamodules.standins.upsampling import fake_images  # noqa: E402
from lightning_modules.components.spectral import log_magnitude_spectrum  # noqa: E402
from lightning_modules.metrics.detection import auroc, binary_scores  # noqa: E402


def small_cnn() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]

    return nn.Sequential(
        *block(3, 32),
        *block(32, 32),
        nn.MaxPool2d(2),
        *block(32, 64),
        nn.MaxPool2d(2),
        *block(64, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 1),
    )


def standardized_spectrum(x: torch.Tensor) -> torch.Tensor:
    s = log_magnitude_spectrum(x)
    return (s - s.mean(dim=(1, 2, 3), keepdim=True)) / s.std(dim=(1, 2, 3), keepdim=True)


def smoothness(x: torch.Tensor) -> torch.Tensor:
    """A training-free "fake" score per image: minus its mean squared Laplacian (smoother scores higher)."""
    laplacian = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).expand(3, 1, 3, 3)
    return -F.conv2d(x, laplacian, groups=3).pow(2).mean(dim=(1, 2, 3))


def blurred_control(
    photos: tuple[np.ndarray, ...],
    seen: tuple[torch.Tensor, torch.Tensor],
    image_size: int,
    rng: np.random.Generator,
    sigma: tuple[float, float] = BLUR_SIGMA,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``blurred_real`` group as the stand-in writes it: fresh crops blurred by ``sigma`` as the reals, the
    seen family's fakes of ``seen`` (images, labels) as the fakes."""
    images, labels = seen
    count = int((labels == 0).sum())
    reals = random_crops(photos, count, image_size, rng)
    if sigma[1] > 0:
        reals = np.stack([gaussian_blur(image, rng.uniform(*sigma)) for image in reals])
    return torch.cat([to_tensor(reals), images[labels == 1]]), labels


def check_blur_control(tests: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> tuple[str, bool]:
    """AP of the training-free smoothness score per group, and the gate: smoothness tells the control's reals
    from the seen group's reals (AUC >= 90 %). The two groups share their fakes, so a detector that scores blur
    as "fake" loses accuracy from the seen group to the control, and only then."""
    scores = {name: smoothness(x) for name, (x, _) in tests.items()}
    aps = {name: 100 * binary_scores(scores[name], y.long())["ap"] for name, (_, y) in tests.items()}
    seen_y, control_y = tests[SEEN_FAMILY][1], tests[BLURRED_REAL][1]
    reals = torch.cat([scores[SEEN_FAMILY][seen_y == 0], scores[BLURRED_REAL][control_y == 0]])
    blurred = torch.cat([torch.zeros(int((seen_y == 0).sum())), torch.ones(int((control_y == 0).sum()))])
    blur_auc = 100 * auroc(reals, blurred.long())
    passed = blur_auc >= 90
    table = (
        "| training-free score | " + " | ".join(tests) + " | gate |\n|---|" + "---:|" * len(tests) + "---|\n"
    )
    table += "| smoothness, AP | " + " | ".join(f"{ap:.0f}" for ap in aps.values())
    table += f" | blurred vs sharp reals AUC {blur_auc:.0f} >= 90: {'pass' if passed else 'FAIL'} |"
    return table, passed


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0


# layout -> (README, block) its table is written to with --readme
README_BLOCKS = {
    "rgbd": ("datamodules/README.md", "standin:rgbd"),
    # the second gate (half-resolution sharpness, Lite0 distances); standin:tgi_gate keeps the first one's table
    "mvtec": ("lightning_modules/tgi_ad/README.md", "standin:tgi_gate_v2"),
}
PROBE_README = "lightning_modules/bihpf/README.md"  # --probe's table, block standin:forensynths_probe
# AUC (%) of genuine vs each display's spoofs, gated on every display (a shortcut for one display is one the
# model can learn): planarity must not separate them either way, consistency must
GATES = {"planarity": (25.0, 75.0), "consistency": (90.0, 100.0)}


def check_rgbd(size: str, root: Path | None = None) -> tuple[str, bool]:
    """The RGB-D stand-in's two training-free scores per display (markdown) and whether both gates pass."""
    import tempfile

    from rgbd_cues import auc_table, capture_scores

    from datamodules.standins.rgbd import write_rgbd_standin

    with tempfile.TemporaryDirectory() as scratch:
        folder = root or Path(scratch) / "rgbd"
        if not (folder / "captures.json").is_file():
            write_rgbd_standin(folder, size=size)
        # the tiny size has a handful of test captures: every split is scored
        rows = capture_scores(folder, ("train", "val", "test") if size == "tiny" else ("test",))
    tables = {score: auc_table(rows, score) for score in GATES}
    groups = list(tables["planarity"])
    lines = ["| score (AUC %, genuine vs spoof) | gate | " + " | ".join(groups) + " |"]
    lines.append("|---|---|" + "---:|" * len(groups))
    passed = True
    for score, (low, high) in GATES.items():
        ok = all(low <= value <= high for value in tables[score].values())
        passed &= ok
        cells = " | ".join(f"{tables[score][g]:.1f}" for g in groups)
        rule = f"every display {'>= ' + f'{low:g}' if high == 100 else f'in [{low:g}, {high:g}]'}"
        lines.append(f"| {score} | {rule}: {'pass' if ok else 'FAIL'} | {cells} |")
    return "\n".join(lines) + "\n", passed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layout", choices=["forensynths", "rgbd", "mvtec"], default="forensynths")
    parser.add_argument(
        "--size", choices=["tiny", "small"], default="small", help="rgbd, mvtec: the stand-in size"
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rgbd, mvtec, --probe: also write the table into the README that shows it",
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train", type=int, default=1600, help="reals (and as many fakes) to train on")
    parser.add_argument("--test", type=int, default=300, help="reals (and as many fakes) per family")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--probe", choices=["lite0", "lite1", "lite2"], help="forensynths: the ImageNet probe"
    )
    parser.add_argument("--probe-size", type=int, default=112, help="the side the probe's network sees")
    parser.add_argument(
        "--headroom",
        choices=["lite0", "lite1", "lite2"],
        help="mvtec: the one-shot ImageNet-feature headroom",
    )
    parser.add_argument(
        "--scorer",
        choices=["devise"],
        help="mvtec: whether the text-image scorer ranks each category's normals above the others'",
    )
    args = parser.parse_args()
    if args.layout in README_BLOCKS:
        readme, block = README_BLOCKS[args.layout]
        switch = ""
        if args.layout == "rgbd":
            table, passed = check_rgbd(args.size)
        elif args.headroom:
            from anomaly_headroom import headroom_table

            table, passed = headroom_table(args.size, args.headroom)
            readme, block = "lightning_modules/patchcore/README.md", "standin:mvtec_headroom"
            switch = f" --headroom {args.headroom}"
        elif args.scorer:
            from text_scorer_check import scorer_table

            table, passed = scorer_table(args.size, args.scorer)
            readme, block = "lightning_modules/tgi_ad/README.md", "standin:tgi_scorer"
            switch = f" --scorer {args.scorer}"
        else:
            from gate_references import gate_references

            table, passed = gate_references(list(MVTEC_SIZES[args.size][0]), size=args.size)
        print(table)
        if args.readme:
            from benchmarks.readme_blocks import replace_block

            command = f"`python scripts/check_standin.py --layout {args.layout} --size {args.size}{switch}`:"
            replace_block(Path(__file__).resolve().parents[1] / readme, block, f"{command}\n\n{table}")
        sys.exit(0 if passed else 1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    photos = tuple(load_photo(n) for c in TRAIN_CATEGORIES for n in PHOTO_CATEGORIES[c])
    families = {f.name: f for f in FAMILIES}

    def pair(family_name: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        reals = random_crops(photos, count, args.image_size, rng)
        fakes = fake_images(families[family_name], random_crops(photos, count, args.image_size, rng))
        images = torch.cat([to_tensor(reals), to_tensor(fakes)])
        return images, torch.cat([torch.zeros(count), torch.ones(count)])

    train_x, train_y = pair(SEEN_FAMILY, args.train)
    tests = {name: pair(name, args.test) for name in families}
    tests[BLURRED_REAL] = blurred_control(photos, tests[SEEN_FAMILY], args.image_size, rng)
    table, passed = check_blur_control(tests)
    print(table + "\n", flush=True)
    if not passed:
        sys.exit(
            f"gate failed: the reals of {BLURRED_REAL} are not measurably smoother than the seen group's"
        )
    if args.probe:
        from forensynths_probe import probe_table

        table, passed = probe_table(
            (train_x, train_y), tests, SEEN_FAMILY, (BLURRED_REAL,), args.probe, args.probe_size
        )
        print(table)
        if args.readme:
            from benchmarks.readme_blocks import replace_block

            command = (
                f"`python scripts/check_standin.py --probe {args.probe} --probe-size {args.probe_size}`:"
            )
            replace_block(
                Path(__file__).resolve().parents[1] / PROBE_README,
                "standin:forensynths_probe",
                f"{command}\n\n{table}",
            )
        sys.exit(0 if passed else 1)
    print(f"| input | {' | '.join(tests)} |\n|---|" + "---:|" * len(tests))
    for name, transform in (("raw pixels", lambda x: x), ("log spectrum", standardized_spectrum)):
        torch.manual_seed(0)
        model = small_cnn()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(args.epochs):
            for index in torch.randperm(len(train_x)).split(64):
                loss = F.binary_cross_entropy_with_logits(
                    model(transform(train_x[index])).squeeze(1), train_y[index]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        cells = []
        with torch.no_grad():
            for x, y in tests.values():
                scores = binary_scores(torch.sigmoid(model(transform(x)).squeeze(1)), y.long())
                cells.append(f"{100 * scores['acc']:.0f} / {100 * scores['ap']:.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
