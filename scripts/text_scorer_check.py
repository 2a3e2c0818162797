"""Can the text-image scorer tell a category from the others? (``check_standin.py --layout mvtec --scorer devise``)

Text-guided selection keeps the generated images that the category's prompts describe best. That helps only if
the scorer ranks a category's own normal images above other categories' images for that category's prompts:
checked here, training-free, before any generation. Per category, every normal training image of the stand-in
(its own as positives, the other categories' as negatives) is scored by the scorer's formula,
sum_c p(c | image) cos(prompt, class name c), for the mean of that category's prompts (the module's templates
filled with the category's name), and the gate asks each category for an image AUROC of at least ``MIN_AUROC``;
a scorer that fails it cannot guide the selection, and its text term should be dropped.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from anomaly_headroom import load

from datamodules.anomaly_images import find_records
from datamodules.standins.mvtec import SIZES, write_mvtec_standin
from lightning_modules.metrics.detection import auroc
from lightning_modules.tgi_ad.prompts import TEMPLATES, candidate_prompts

MIN_AUROC = 75.0  # image AUROC (%) of own normals vs other categories' normals, every category


def scorer_table(size: str = "small", scorer: str = "devise", root: Path | None = None) -> tuple[str, bool]:
    """(markdown, passed): per category, the AUROC of the scorer's text score for that category's prompts."""
    if scorer != "devise":
        raise ValueError(f"--scorer {scorer}: only devise is checked here")
    from lightning_modules.tgi_ad.devise_scoring import imagenet_class_names, load_devise

    model = load_devise("lite0")
    categories = list(SIZES[size][0])
    with tempfile.TemporaryDirectory() as scratch:
        folder = root or Path(scratch) / "mvtec"
        if not folder.is_dir():
            write_mvtec_standin(folder, size=size)
        images = {c: load(find_records(folder / c, "mvtec_ad", "train")) for c in categories}
    embeddings = {category: model.image_embeddings(x) for category, x in images.items()}
    rows, passed = [], True
    for category in categories:
        prompts = candidate_prompts(category, {}, TEMPLATES)
        text = F.normalize(
            model.text_embeddings(prompts).mean(0), dim=0
        )  # the prompts' mean, as the selection
        scores = torch.cat(
            [embeddings[c] @ text for c in categories]
        )  # sum_c p(c | image) cos(prompt, class c)
        labels = torch.cat([torch.full((len(images[c]),), int(c == category)) for c in categories])
        value = 100 * auroc(scores, labels)
        top = model.class_probabilities(images[category][:8]).mean(0).topk(3).indices.tolist()
        names = "; ".join(imagenet_class_names()[i].split(",")[0] for i in top)
        ok = value >= MIN_AUROC
        passed &= ok
        rows.append(f"| {category} | {value:.1f} | {names} | {'pass' if ok else 'FAIL'} |")
    header = [
        f"Text-image scorer: {model.description}; per category, its normal training images against the other "
        f"categories' (every image of the {size} stand-in), scored for the category's prompts "
        f"({' / '.join(TEMPLATES)}); gate: every category's AUROC >= {MIN_AUROC:g} %",
        "",
        "| category | image AUROC % | ImageNet classes it sees most (first 8 images) | gate |",
        "|---|---:|---|---|",
    ]
    return "\n".join(header + rows) + "\n", passed
