"""Text-guided generation (issue 13): WordNet keyword expansion into prompts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from datamodules.wordnet import expand_keyword
from lightning_modules.tgi_ad.prompts import candidate_prompts


def test_wordnet_expansion_of_screw_has_a_synonym_a_hypernym_and_hyponyms() -> None:
    expanded = expand_keyword("screw")
    assert "screw propeller" in expanded["synonyms"]
    assert {"fastener", "inclined plane"} <= set(expanded["hypernyms"])
    assert {"machine screw", "woodscrew"} <= set(expanded["hyponyms"])
    assert "screw" not in expanded["synonyms"]
    assert not {"jailer", "coitus"} & set(expanded["synonyms"] + expanded["hypernyms"])  # object senses only


def test_prompts_fill_both_templates_keyword_first_and_unknown_words_are_refused() -> None:
    prompts = candidate_prompts("bottle", expand_keyword("bottle"))
    assert prompts[:2] == ["a photo of a bottle", "a photo of a flawless bottle"]
    assert "a photo of a flawless vessel" in prompts  # bottle -> vessel (hypernym)
    assert len(prompts) == len(set(prompts))
    assert "a photo of an ampoule" in prompts  # the article follows the word
    assert (
        candidate_prompts("metal nut", expand_keyword("metal nut"))[0] == "a photo of a metal nut"
    )  # expanded through "nut"
    with pytest.raises(ValueError, match="not a WordNet noun"):
        expand_keyword("xqzzy")
    coins = expand_keyword("coins")  # the stand-in's category: a coin is noun.possession, not an object sense
    assert "coin" in coins["synonyms"] and coins["hypernyms"]


def test_prompts_are_ranked_by_clip_similarity_to_the_images() -> None:
    import torch

    from lightning_modules.tgi_ad.clip_scoring import load_clip, rank_prompts

    scorer = load_clip(None)
    assert "random" in scorer.description
    prompts = candidate_prompts("screw", expand_keyword("screw"))[:6]
    images = torch.rand(3, 3, 48, 48)
    ranked = rank_prompts(prompts, scorer.image_embeddings(images), scorer)
    assert sorted(p for p, _ in ranked) == sorted(prompts)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    # the ranking is the cosine with the images' mean embedding: recompute one by hand
    image = torch.nn.functional.normalize(scorer.image_embeddings(images).mean(0), dim=0)
    best_text = scorer.text_embeddings([ranked[0][0]])[0]
    assert float(best_text @ image) == pytest.approx(ranked[0][1], abs=1e-5)
    with pytest.raises(FileNotFoundError, match="not a local CLIP folder"):
        load_clip("/nonexistent/clip")


def test_generator_encodes_a_gaussian_and_zero_temperature_is_deterministic() -> None:
    import torch

    from lightning_modules.tgi_ad.networks import VarianceAwareVQGAN, generator_loss

    torch.manual_seed(0)
    generator = VarianceAwareVQGAN(width=8, latent_dim=4, num_codes=16, downsamplings=2).eval()
    images = torch.rand(2, 3, 32, 32)
    mean, log_variance = generator.encode(images)
    assert mean.shape == log_variance.shape == (2, 4, 8, 8) and (log_variance.exp() > 0).all()
    with torch.no_grad():
        generator(images)  # the codebook takes its codes from the first batch
        a, b = (
            generator.generate(images, samples=3, temperature=0.0),
            generator.generate(images, samples=3, temperature=0.0),
        )
        c = generator.generate(images, samples=3, temperature=5.0)
    assert a.shape == (6, 3, 32, 32) and torch.equal(a, b) and torch.equal(a[0], a[1])
    assert not torch.equal(a, c) and 0 <= c.min() and c.max() <= 1
    generator.train()
    out = generator(images)
    terms = generator_loss(images, out, features=lambda x: [x.mean(1, keepdim=True)], kl_weight=1.0)
    assert set(terms) == {"l1", "vq", "kl", "feature", "total"}
    terms["total"].backward()
    assert generator.head.weight.grad is not None and generator.head.weight.grad.abs().sum() > 0


def test_the_sigma_floor_keeps_the_sampling_spread() -> None:
    from lightning_modules.tgi_ad.networks import VarianceAwareVQGAN

    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32)
    free = VarianceAwareVQGAN(width=8, latent_dim=4, num_codes=16, downsamplings=2)
    floored = VarianceAwareVQGAN(width=8, latent_dim=4, num_codes=16, downsamplings=2, min_std=0.3)
    floored.load_state_dict(free.state_dict())
    with torch.no_grad():
        free.head.bias[4:] = -8.0  # a collapsed log variance: sigma = 0.018
        floored.head.bias[4:] = -8.0
        sigma_free = (0.5 * free.encode(images)[1]).exp()
        sigma_floored = (0.5 * floored.encode(images)[1]).exp()
    assert sigma_free.max() < 0.1 and sigma_floored.min() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="min_std must be >= 0"):
        VarianceAwareVQGAN(min_std=-0.1)


def test_a_decoder_learning_from_the_mean_gets_no_gradient_from_the_samples() -> None:
    """decoder_learns_from="mean": the sample's reconstruction trains the encoder (μ and σ) and leaves the decoder's
    weights alone, the mean's trains both; in eval, and at t = 0, the generator is the plain one."""
    from lightning_modules.tgi_ad.networks import VarianceAwareVQGAN, generator_loss

    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32)
    generator = VarianceAwareVQGAN(8, 4, 16, 2, min_std=0.3, decoder_learns_from="mean").train()
    plain = VarianceAwareVQGAN(8, 4, 16, 2, min_std=0.3)
    out = generator(images)
    out["reconstruction"].mean().backward()
    decoder_grads = [p.grad for p in generator.decoder.parameters()]
    assert all(g is None or not g.abs().sum() for g in decoder_grads)
    assert generator.head.weight.grad.abs().sum() > 0
    generator.zero_grad()
    out = generator(images)
    terms = generator_loss(images, out, features=lambda x: [x.mean(1, keepdim=True)])
    assert set(terms) == {"l1", "l1_mean", "vq", "kl", "feature", "feature_mean", "total"}
    terms["total"].backward()
    assert all(p.grad is not None for p in generator.decoder.parameters())
    plain.load_state_dict(generator.state_dict())
    generator.eval(), plain.eval()
    with torch.no_grad():
        assert "mean_reconstruction" not in generator(images)
        torch.testing.assert_close(
            generator(images, 0.0)["reconstruction"], plain(images, 0.0)["reconstruction"]
        )
    with pytest.raises(ValueError, match="decoder_learns_from must be sample or mean"):
        VarianceAwareVQGAN(decoder_learns_from="codes")


def test_the_diversity_gate_fails_blurred_copies_and_passes_varied_sharp_samples() -> None:
    from torchvision.transforms.functional import gaussian_blur

    from lightning_modules.tgi_ad.diversity import diversity_gate, sharpness

    torch.manual_seed(0)
    normals = torch.rand(4, 3, 32, 32)
    blurred = gaussian_blur(normals, [7, 7], [2.0, 2.0])
    assert (sharpness(blurred) < 0.2 * sharpness(normals)).all()
    copies = diversity_gate({"diversity": 0.01, "normal_diversity": 0.5}, blurred, normals)
    assert copies["spread_ratio"] == pytest.approx(0.02) and not copies["gate_passes"]
    assert copies["gate"].startswith("fails")
    varied = diversity_gate({"diversity": 0.2, "normal_diversity": 0.5}, torch.rand(4, 3, 32, 32), normals)
    assert varied["gate_passes"] and varied["sharpness_ratio"] == pytest.approx(1, abs=0.2)
    one = diversity_gate({"diversity": 0.2, "normal_diversity": float("nan")}, normals, normals[:1])
    assert not one["gate_passes"] and one["gate"].startswith("not judged")


def test_the_gate_reads_sharpness_where_resampling_leaves_it_and_blur_does_not() -> None:
    """On a real photo: rotating by 4 degrees and rescaling by 3 % (the augmentation control) halves the full-resolution
    variance of the Laplacian but keeps the half-resolution one within the gate's 20 %, which a 1.5 px blur does
    not."""
    from skimage import data as photos
    from torchvision.transforms.functional import InterpolationMode, affine, gaussian_blur

    from lightning_modules.tgi_ad.diversity import sharpness

    brick = torch.from_numpy(photos.brick()).float()[None, None].expand(1, 3, 512, 512) / 255
    real = torch.nn.functional.interpolate(brick[..., :256, :256], size=(128, 128), mode="area")
    moved = affine(
        real, angle=4.0, translate=[0, 0], scale=1.03, shear=[0.0], interpolation=InterpolationMode.BILINEAR
    )
    blurred = gaussian_blur(real, [9, 9], [1.5, 1.5])
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # no border filled by the rotation
    full, half = (float(sharpness(moved[inner], s) / sharpness(real[inner], s)) for s in (1, 2))
    assert full < 0.8 and 0.8 <= half <= 1.2, (full, half)
    assert float(sharpness(blurred[inner], 2) / sharpness(real[inner], 2)) < 0.8


def test_selector_keeps_exactly_the_requested_number_and_ranks_the_planted_match_first() -> None:
    import torch

    from lightning_modules.tgi_ad.selector import outliers, select

    torch.manual_seed(0)
    prompt = torch.randn(16)
    sources = torch.randn(1, 16).expand(40, -1)
    candidates = sources + 0.5 * torch.randn(40, 16)
    candidates[17] = (
        sources[0] + 3.0 * prompt + 0.01 * torch.randn(16)
    )  # near-duplicate of the prompt-matching image
    chosen = select(candidates, prompt, sources, keep=5, outlier_z=None)
    assert len(chosen) == 5 and len(set(chosen.tolist())) == 5 and chosen[0] == 17
    far = candidates.clone()
    far[3] = -20 * sources[0]  # an outlier away from every other candidate
    assert outliers(far, z=3.0).nonzero().flatten().tolist() == [3]
    assert 3 not in select(far, prompt, sources, keep=39, outlier_z=3.0).tolist()
    with pytest.raises(ValueError, match="cannot keep 41 of 40"):
        select(candidates, prompt, sources, keep=41)


def test_the_per_source_quota_spreads_the_kept_images_over_the_sources() -> None:
    """Near-copies score alike within a source, so a global top-k takes every image from the best-scoring
    source; the quota keeps ⌈keep / sources⌉ of each, the best of each, and small sources are filled by the rest."""
    from lightning_modules.tgi_ad.selector import per_source_counts, select, selection_scores

    torch.manual_seed(0)
    prompt = torch.randn(16)
    normals = torch.randn(4, 16)
    normals[2] += 2.0 * prompt  # source 2 matches the prompt best
    source_index = torch.arange(4).repeat_interleave(8)
    sources = normals[source_index]
    candidates = sources + 0.01 * torch.randn(32, 16)  # copies of their source
    top = select(candidates, prompt, sources, keep=8, outlier_z=None)
    assert per_source_counts(top, source_index, 4) == [0, 0, 8, 0]
    spread = select(candidates, prompt, sources, keep=8, outlier_z=None, source_index=source_index)
    assert per_source_counts(spread, source_index, 4) == [2, 2, 2, 2]
    scores = selection_scores(candidates, prompt, sources)
    assert scores[spread].tolist() == sorted(scores[spread].tolist(), reverse=True)  # best first
    for source in range(4):  # each source's two best
        members = (source_index == source).nonzero().flatten()
        best = set(members[scores[members].argsort(descending=True)[:2]].tolist())
        assert best == {i for i in spread.tolist() if source_index[i] == source}
    small = torch.tensor([0, 1, 1, 1, 1, 2, 2, 2, 2])  # source 0 has one candidate
    kept = select(candidates[:9], prompt, normals[small], keep=6, outlier_z=None, source_index=small)
    counts = per_source_counts(kept, small, 3)
    assert sum(counts) == 6 and counts[0] == 1 and max(counts) == 3
    with pytest.raises(ValueError, match="source_index has 8 entries for 9 candidates"):
        select(candidates[:9], prompt, normals[small], keep=6, source_index=small[:8])


def test_text_weight_zero_selects_without_the_text_term() -> None:
    """text_weight 0 (a scorer that cannot tell the category apart): the prompt no longer moves the selection, the
    source term alone ranks; at the paper's weight 1 a prompt-matching candidate is kept first."""
    from lightning_modules.tgi_ad.module import TextGuidedGenerationModule
    from lightning_modules.tgi_ad.selector import select, selection_scores

    torch.manual_seed(0)
    source = torch.randn(1, 16).expand(30, -1)
    candidates = source + torch.randn(30, 16)
    prompts = torch.randn(2, 16)
    candidates[5] = 4 * prompts[0]  # matches the first prompt, far from its source
    paper = select(candidates, prompts[0], source, keep=5, outlier_z=None)
    assert paper[0] == 5
    off = [select(candidates, p, source, keep=5, outlier_z=None, text_weight=0.0) for p in prompts]
    assert off[0].tolist() == off[1].tolist() and 5 not in off[0].tolist()
    alone = selection_scores(candidates, prompts[0], source, gamma=0.5, text_weight=0.0)
    assert torch.allclose(alone, 0.5 * torch.nn.functional.cosine_similarity(candidates, source, dim=-1))
    with pytest.raises(ValueError, match="text_weight must be >= 0, got -1"):
        TextGuidedGenerationModule(text_weight=-1, feature_weight=0.0)


def test_generation_run_writes_kept_images_that_a_baseline_trains_on(run_cli, tmp_path) -> None:
    """fit: 2 rounds of generation and selection; the kept images land in the MVTec layout, TensorBoard shows the
    real normals, candidates, kept and rejected images and the prompts; PatchCore then trains on them."""
    import numpy as np

    from datamodules.image_io import read_rgb
    from tests.conftest import CONFIGS
    from tests.helpers import read_events

    generate = ["--config", str(CONFIGS / "tgi_ad_generate.yaml")]
    sizes = [
        "--model.init_args.width",
        "8",
        "--model.init_args.code_dim",
        "8",
        "--model.init_args.num_codes",
        "32",
        "--model.init_args.samples_per_image",
        "4",
        "--model.init_args.keep",
        "6",
        "--trainer.max_epochs",
        "2",
        "--data.init_args.shots",
        "2",
        "--data.init_args.category",
        "brick",
    ]
    fit = run_cli("fit", *generate, *sizes)
    run_dir = Path(fit.trainer.log_dir)
    kept = sorted((run_dir / "generated" / "brick" / "train" / "good").glob("generated_*.png"))
    assert len(kept) == 6  # keep 6 of 2 shots x 4 samples
    pixels = read_rgb(kept[0])
    assert pixels.shape == (32, 32, 3) and np.ptp(pixels) > 0  # a real picture, not a blank
    events = read_events(run_dir)
    assert {
        "generation/real_normals",
        "generation/candidates",
        "generation/kept",
        "generation/rejected",
    } <= set(events.Tags()["images"])
    assert (
        events.Scalars("generation/kept")[-1].value == 6 and len(events.Scalars("generation/kept")) == 2
    )  # rounds
    assert "generation/prompts/text_summary" in events.Tags()["tensors"]
    summary = json.loads((run_dir / "generated" / "generation.json").read_text())
    assert summary["kept"] == 6 and summary["candidates"] == 8 and summary["category"] == "brick"
    # no clip_path: the DeViSE-style scorer of the packaged ImageNet classifier and sentence encoder, named as
    # what stands in for the paper's CLIP
    stand_ins = summary["components"].split(". Also: ")[0]
    assert (
        stand_ins.startswith("STAND-INS:") and "text scorer: DeViSE-style, standing in for CLIP" in stand_ins
    )
    assert summary["source_distance"] > 0 and summary["diversity"] > 0 and len(summary["prompts"]) == 3
    assert summary["kept_per_source"] == [3, 3]  # the quota: keep 6 of 2 sources
    assert summary["gamma"] == 0.5 and "gamma_note" not in summary  # a scorer that knows images keeps gamma
    assert summary["text_weight"] == 1.0 and "text_note" not in summary  # the paper's score by default
    assert (
        summary["spread_ratio"] > 0
        and summary["sharpness_ratio"] > 0
        and "spread ratio >= 0.3" in summary["gate"]
    )
    assert events.Scalars("generation/kept_min_per_source")[-1].value == 3
    assert "generation/kept_per_source/text_summary" in events.Tags()["tensors"]
    assert events.Scalars("generation/source_distance")[-1].value == pytest.approx(summary["source_distance"])

    # the sampling sweep reads the run back: at t = 0 every sample is the mean's decoding (no code moves, no
    # spread); at t = 4 codes move
    from scripts.tgi_sampling_sweep import main as sweep

    markdown = sweep([str(run_dir.parent), "--labels", "tiny", "--temperatures", "0", "4", "--samples", "3"])
    rows = [line.split("|")[1:-1] for line in markdown.splitlines() if line.startswith("| tiny")]
    still, moved = ([float(v) for v in row[2:]] for row in rows)
    assert still[:3] == [0.0, 0.0, 0.0] and rows[0][1].strip() == "brick"
    assert moved[1] > 0 and moved[4] > 0  # codes changed, and the samples left their source

    baseline = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "patchcore_mvtec.yaml"),
        "--data.init_args.category",
        "brick",
        "--data.init_args.shots",
        "2",
        "--data.init_args.extra_normal_dir",
        str(run_dir / "generated"),
    )
    train = baseline.datamodule.datasets["train"].records
    assert len(train) == 8 and sum(r.path.name.startswith("generated_") for r in train) == 6


def test_diversity_is_zero_for_copies_of_the_source_and_grows_with_the_difference() -> None:
    """The copying pitfall's measure: kept images identical to their source score 0 on both distances."""
    from lightning_modules.components.feature_extractor import FrozenFeatures
    from lightning_modules.tgi_ad.diversity import generation_diversity

    torch.manual_seed(0)
    features = FrozenFeatures("resnet18", (1, 2), pretrained=False)
    normals = torch.rand(2, 3, 32, 32)
    copies = normals.repeat_interleave(3, dim=0)
    sources = torch.tensor([0, 0, 0, 1, 1, 1])
    same = generation_diversity(features, copies, sources, normals)
    assert same["source_distance"] == pytest.approx(0, abs=1e-6) and same["diversity"] == pytest.approx(
        0, abs=1e-6
    )
    assert same["normal_diversity"] > 0
    slightly = generation_diversity(
        features, (copies + 0.05 * torch.randn_like(copies)).clamp(0, 1), sources, normals
    )
    strongly = generation_diversity(
        features, (copies + 0.3 * torch.randn_like(copies)).clamp(0, 1), sources, normals
    )
    assert 0 < slightly["source_distance"] < strongly["source_distance"]
    assert 0 < slightly["diversity"] < strongly["diversity"]
    one = generation_diversity(features, copies[:3], sources[:3], normals[:1])
    assert math.isnan(one["normal_diversity"])


def test_a_prior_trained_on_other_photos_starts_the_generation(run_cli) -> None:
    """configs/tgi_ad_prior.yaml trains the generator alone on the stand-in's photos folder (none of them a
    category's photo); the generation's prior_path then starts from exactly those weights, a prior of other
    sizes is one line, and freeze_decoder keeps the prior's decoder and codebook. The prior here is trained with
    the patch-GAN term, whose discriminator a generation with one then starts from."""
    from datamodules.standins.mvtec import CATEGORIES, PHOTO_CATEGORIES, prior_photos
    from lightning_modules.outputs.checkpoints import RunCheckpointError
    from lightning_modules.tgi_ad.module import TextGuidedGenerationModule
    from tests.conftest import CONFIGS

    used = {photo for _, photo in CATEGORIES.values()}
    assert len(prior_photos()) == sum(n not in used for names in PHOTO_CATEGORIES.values() for n in names) > 4
    sizes = [
        "--model.init_args.width",
        "8",
        "--model.init_args.code_dim",
        "8",
        "--model.init_args.num_codes",
        "32",
    ]
    adversarial = [
        "--model.init_args.adversarial_weight",
        "0.1",
        "--model.init_args.discriminator_width",
        "8",
    ]
    fit = run_cli("fit", "--config", str(CONFIGS / "tgi_ad_prior.yaml"), *sizes, *adversarial)
    assert fit.datamodule.category == "photos" and len(fit.datamodule.datasets["train"].records) == 8
    # the patch-GAN term: a discriminator that stepped beside the generator, its losses logged
    generator_optimizer, discriminator_optimizer = fit.trainer.optimizers
    assert discriminator_optimizer.state and generator_optimizer.state
    assert {"train/adversarial", "train/discriminator"} <= set(fit.trainer.callback_metrics)
    assert not list(Path(fit.trainer.log_dir).glob("generated"))  # a prior writes no images
    run = Path(fit.trainer.log_dir).parent
    started = TextGuidedGenerationModule(
        width=8, code_dim=8, num_codes=32, prior_path=str(run), pretrained=False
    )
    for name, value in fit.model.generator.state_dict().items():
        assert torch.equal(started.generator.state_dict()[name], value), name
    assert started.discriminator is None  # no adversarial term asked: none built, whatever the prior had
    adversarial_start = TextGuidedGenerationModule(
        width=8,
        code_dim=8,
        num_codes=32,
        prior_path=str(run),
        pretrained=False,
        adversarial_weight=0.1,
        discriminator_width=8,
    )
    for name, value in fit.model.discriminator.state_dict().items():  # the prior's discriminator carries over
        assert torch.equal(adversarial_start.discriminator.state_dict()[name], value), name
    with pytest.raises(ValueError, match="adversarial_weight must be >= 0, got -1"):
        TextGuidedGenerationModule(width=8, code_dim=8, num_codes=32, adversarial_weight=-1, pretrained=False)
    with pytest.raises(
        RunCheckpointError, match=r"prior_path=.*the prior's generator has width 8 \(here 16\)"
    ):
        TextGuidedGenerationModule(width=16, code_dim=8, num_codes=32, prior_path=str(run), pretrained=False)

    # freeze_decoder: the generation fine-tunes the encoder alone; the prior's decoder and codebook come out as
    # they went in (batch-norm statistics included), so the codes it samples still render differently
    tuned = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "tgi_ad_generate.yaml"),
        *sizes,
        "--model.init_args.prior_path",
        str(run),
        "--model.init_args.freeze_decoder",
        "true",
        "--model.init_args.samples_per_image",
        "4",
        "--model.init_args.keep",
        "4",
    ).model.generator.state_dict()
    prior = fit.model.generator.state_dict()
    fixed = [n for n in prior if n.startswith(("decoder.", "quantizer."))]
    assert fixed and all(torch.equal(tuned[n], prior[n]) for n in fixed)
    assert not torch.equal(tuned["head.weight"], prior["head.weight"])  # the encoder learnt
    with pytest.raises(ValueError, match="freeze_decoder=true needs model.init_args.prior_path"):
        TextGuidedGenerationModule(width=8, code_dim=8, num_codes=32, freeze_decoder=True, pretrained=False)


def test_the_devise_scorer_knows_a_real_photo_and_the_scorer_choice_fails_in_one_line() -> None:
    """The CLIP-free scorer on a real photo (scikit-image's coffee cup): a prompt naming what it shows scores above
    prompts naming other things; the choice of scorer refuses what cannot be had."""
    from skimage import data as photos

    from lightning_modules.tgi_ad.text_scorers import load_text_scorer

    cup = torch.from_numpy(photos.coffee()).permute(2, 0, 1)[None].float() / 255
    scorer = load_text_scorer(None, "devise")
    scores = {p: float(scorer.score(cup, p)) for p in ("a cup of coffee", "a brick wall", "a motorcycle")}
    assert max(scores, key=scores.get) == "a cup of coffee", scores
    probabilities = scorer.class_probabilities(cup)
    assert probabilities.shape == (1, 1000) and torch.allclose(
        probabilities.sum(), torch.tensor(1.0), atol=1e-4
    )
    # the image's embedding is the probability-weighted mean of the class names' embeddings: its dot product with a
    # prompt's is the formula sum_c p(c | image) cos(prompt, class c)
    prompt = scorer.text_embeddings(["a cup of coffee"])[0]
    formula = (probabilities[0] * (scorer.class_text @ prompt)).sum()
    assert torch.allclose(scorer.score(cup, "a cup of coffee")[0], formula, atol=1e-5)
    assert load_text_scorer(None, "random").random
    with pytest.raises(ValueError, match="needs model.init_args.clip_path"):
        load_text_scorer(None, "clip")
    with pytest.raises(ValueError, match="must be auto, clip, devise or random"):
        load_text_scorer(None, "siglip")
