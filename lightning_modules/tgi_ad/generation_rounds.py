"""What text-guided generation does with its generator, round by round: sample, score, select, write.

A round draws ``samples_per_image`` variants of every normal image seen in training, scores them with CLIP
against the best WordNet prompts for the object and against their source image, and keeps the best ``keep``
(outliers rejected); the kept images join the next round's batches. At the end of fit the last round's images are
written in the MVTec layout with ``generation.json`` (counts, diversity, prompts, components). The module
(``module.py``) trains the generator; this mixin is everything it does with it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from datamodules.batch import KeywordExpansion
from lightning_modules.outputs.run_outputs import log_text
from lightning_modules.outputs.tables import Component, components_line
from lightning_modules.tgi_ad.clip_scoring import rank_prompts
from lightning_modules.tgi_ad.diversity import diversity_gate, generation_diversity
from lightning_modules.tgi_ad.prompts import candidate_prompts
from lightning_modules.tgi_ad.selector import outliers, per_source_counts, select
from lightning_modules.tgi_ad.text_scorers import load_text_scorer

log = logging.getLogger(__name__)


class GenerationRounds:
    """The rounds of a ``TextGuidedGenerationModule`` (its ``generator``, ``features``, ``accepted`` buffer,
    ``_normals``, ``prompts``, ``_scorer``, ``statistics`` and hyper-parameters)."""

    hparams: Any
    _normals: dict[str, torch.Tensor]
    prompts: list[tuple[str, float]]
    statistics: dict[str, Any]

    def on_fit_start(self) -> None:
        """The data must expand the object's name into words (checked now, not after the first round)."""
        if not self.prompts:
            self.data_as(KeywordExpansion)

    @torch.no_grad()
    def generate_and_select(self) -> None:
        """One round: variants of every normal image, text-image scores, the best ``keep`` accepted."""
        if not self._normals:
            return
        normals = torch.stack(list(self._normals.values())).to(self.device)
        if self._scorer is None:
            self._scorer = load_text_scorer(self.hparams.clip_path, self.hparams.get("text_scorer", "auto"))
        scorer = self._scorer
        normal_embeddings = scorer.image_embeddings(normals.cpu())
        if not self.prompts:
            keyword = self.hparams.keyword or self._category()
            expanded = self.data_as(KeywordExpansion).expand_keyword(keyword)
            prompts = candidate_prompts(keyword, expanded, self.hparams.templates)
            self.prompts = rank_prompts(prompts, normal_embeddings, scorer)
            log.info("prompts (%s): %s", scorer.description, self.prompts[: self.hparams.top_prompts])
        prompt = scorer.text_embeddings([p for p, _ in self.prompts[: self.hparams.top_prompts]]).mean(0)
        was_training = self.generator.training
        self.generator.eval()
        candidates = self.generator.generate(
            normals, self.hparams.samples_per_image, self.hparams.temperature
        )
        self.generator.train(was_training)
        candidates = candidates.float().cpu()
        embeddings = scorer.image_embeddings(candidates)
        sources = normal_embeddings.repeat_interleave(self.hparams.samples_per_image, dim=0)
        source_of = torch.arange(len(normals)).repeat_interleave(self.hparams.samples_per_image)
        keep = min(self.hparams.keep, len(candidates))
        gamma = 0.0 if scorer.random else self.hparams.gamma
        text_weight = float(self.hparams.get("text_weight", 1.0))  # older checkpoints: the paper's score
        chosen = select(
            embeddings,
            prompt,
            sources,
            keep,
            gamma,
            self.hparams.outlier_z,
            source_of if self.hparams.per_source else None,
            text_weight,
        )
        self.accepted = candidates[chosen].to(self.device)
        rejected = torch.ones(len(candidates), dtype=torch.bool)
        rejected[chosen] = False
        counts = per_source_counts(chosen, source_of, len(normals))
        self.statistics = {
            "kept": keep,
            "candidates": len(candidates),
            "outliers": int(outliers(embeddings, self.hparams.outlier_z).sum()),
            "kept_min_per_source": min(counts),
            "kept_max_per_source": max(counts),
            "gamma": gamma,
            "text_weight": text_weight,
        }
        if self.features is not None:  # copying the source is the one-shot failure: measure it
            source_index = chosen.to(self.device) // self.hparams.samples_per_image
            self.statistics |= generation_diversity(self.features, self.accepted, source_index, normals)
            self.statistics |= diversity_gate(self.statistics, self.accepted, normals)
        self.log_dict(
            {f"generation/{k}": float(v) for k, v in self.statistics.items() if not isinstance(v, str)}
        )
        self.statistics |= {"kept_per_source": counts}
        if not text_weight:
            self.statistics["text_note"] = (
                f"text term off (text_weight 0): {scorer.description} ranked the prompts, the selection used "
                "the source term alone"
            )
        if scorer.random and self.hparams.gamma:
            self.statistics["gamma_note"] = (
                f"gamma {self.hparams.gamma:g} set to 0: the text scorer is the random CLIP stand-in"
            )
        per_source = ", ".join(f"{Path(p).name}: {n}" for p, n in zip(self._normals, counts, strict=True))
        log_text(self.trainer, "generation/kept_per_source", per_source)
        self._log_pictures(normals.cpu(), candidates, candidates[chosen], candidates[rejected])

    def _category(self) -> str:
        category = self.split_info("train").category
        if not category:
            raise ValueError(
                "model.init_args.keyword is null and the data names no category: set the object's name"
            )
        return str(category).replace("_", " ")

    def _log_pictures(self, normals, candidates, kept, rejected) -> None:
        grids = {
            "real_normals": normals[:16],
            "candidates": candidates[:32],
            "kept": kept[:16],
            "rejected": rejected[:16] if len(rejected) else torch.zeros(1, 3, 8, 8),
        }
        self.log_pictures("generation", grids)
        lines = [f"{score:.4f}  {prompt}" for prompt, score in self.prompts[:10]]
        log_text(self.trainer, "generation/prompts", "\n\n".join(lines))

    # ------------------------------------------------------------------------------------------- output
    def on_fit_end(self) -> None:
        """Write the last round's kept images as ``<output_dir>/<category>/train/good/generated_<n>.png``."""
        if not self.trainer.is_global_zero or not len(self.accepted):
            return
        category = self.split_info("train").category or "category"
        folder = self.output_dir() / str(category) / "train" / "good"
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("generated_*.png"):
            stale.unlink()
        for index, image in enumerate(self.accepted.float().cpu()):
            save_image(image, folder / f"generated_{index:04d}.png")
        summary = {
            "components": components_line(self.components()),
            **self.statistics,
            "category": str(category),
            "prompts": [[prompt, score] for prompt, score in self.prompts[: self.hparams.top_prompts]],
        }
        (self.output_dir() / "generation.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.print(
            f"{len(self.accepted)} generated normal images written to {folder} "
            f"(train any baseline on them: --data.init_args.extra_normal_dir {self.output_dir()})"
        )

    def components(self) -> list[Component]:
        """The feature network's weights and the data, then the text scorer that ranked prompts and images."""
        found = super().components()
        if self._scorer is not None:
            found.append(Component(f"text scorer: {self._scorer.description}", self._scorer.stand_in))
        return found

    def output_dir(self) -> Path:
        if self.hparams.output_dir:
            return Path(self.hparams.output_dir)
        return self.run_dir() / "generated"
