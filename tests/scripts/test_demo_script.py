"""`make demo`'s script runs every ForenSynths method and joins their tables (here shortened by smoke.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, REPO


def test_demo_script_compares_every_method(tmp_path: Path, standin_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_forensynths

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    markdown = demo_forensynths.main([*smoke, "--runs_dir", str(tmp_path)])
    header = markdown.splitlines()[2]
    for column in ("cnndetection acc", "bihpf ap", "frepgan acc", "frepgan C alone acc", "fingerprintnet ap"):
        assert column in header
    assert (tmp_path / "demo_forensynths.md").read_text() == markdown
    assert (tmp_path / "demo_frepgan" / "version_0" / "results_unperturbed.csv").is_file()


def test_calibration_demo_script_writes_the_three_tables(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_calibration

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    markdown = demo_calibration.main([*smoke, "--runs_dir", str(tmp_path)])
    assert markdown.count("| uncalibrated |") == 3 and markdown.count("| pts / cl |") == 3
    assert (tmp_path / "demo_calibration.md").is_file()


def test_mixing_demo_script_reports_errors_and_the_uncertainty_auroc(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_mixing

    smoke = [
        "--config",
        str(CONFIGS / "smoke.yaml"),
        "--data.init_args.root",
        str(standin_root),
        "--trainer.limit_predict_batches",
        "3",
    ]
    markdown = demo_mixing.main(["--seeds", "0", "--epochs", "1", "--runs_dir", str(tmp_path), *smoke])
    for method in ("baseline", "mixup", "cutmix", "dmixup", "dcutmix"):
        assert f"| {method} | " in markdown
    assert "AUROC" in markdown


def test_vit_demo_script_trains_the_cnn_then_three_variants(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_vit_aal

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    markdown = demo_vit_aal.main(
        ["--seeds", "0", "--epochs", "1", "--cnn_epochs", "1", "--runs_dir", str(tmp_path), *smoke]
    )
    assert "epoch reaching 30 % val acc" in markdown
    for variant in ("plain ViT", "ViT + AAL", "advanced"):
        assert f"| {variant} | " in markdown
    assert (tmp_path / "demo_vit_vit_aal_cifar100_seed0" / "version_0" / "links.pt").is_file()
    advanced = tmp_path / "demo_vit_vit_aal_advanced_cifar100_seed0" / "version_0" / "config.yaml"
    assert "links_path: " + str(tmp_path / "demo_vit_vit_aal_cifar100_seed0") in advanced.read_text()
    assert demo_vit_aal.first_epoch_reaching([0.1, 0.4, 0.6, 0.5], 0.5) == 3
    assert demo_vit_aal.first_epoch_reaching([0.1], 0.5) is None


def test_antispoof_demo_script_compares_both_methods_per_display(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_antispoof

    smoke = [
        "--config",
        str(CONFIGS / "smoke.yaml"),
        "--data.init_args.root",
        str(standin_root),
        "--model.init_args.pretrained",
        "false",
    ]
    markdown = demo_antispoof.main(["--seeds", "0", "--runs_dir", str(tmp_path), *smoke])
    for method in ("mToFNet", "supervised RGB-D", "supervised RGB"):
        assert f"| {method} | mean unseen | " in markdown
    assert "curved_led" in markdown and "(unseen)" in markdown
    assert demo_antispoof.main(["--seeds", "0", "--runs_dir", str(tmp_path), "--report_only"]).startswith(
        "| method"
    )


def test_anomaly_demo_script_tables_every_regime_and_category(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_anomaly

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
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


def test_tgi_demo_script_tables_the_four_baselines_with_and_without_generated_normals(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    """One generation run feeds the four ``*_tgi`` configs; real-only runs that exist are reused, not rerun."""
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_tgi_ad

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
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
    assert len(rows) == 3 * 8 and all("—" not in row for row in rows), markdown
    assert "| PatchCore | real + generated |" in markdown
    generated = next(line for line in markdown.splitlines() if line.startswith("| one-shot | brick |"))
    assert "| 3 / 4 |" in generated and generated.endswith(
        "| — |"
    )  # one real normal: no spread between normals
    kept = list(
        (tmp_path / "demo_tgi_generate_brick_1shot_seed0").glob("version_0/generated/brick/train/good/*.png")
    )
    assert len(kept) == 3
    tgi_run = tmp_path / "demo_anomaly_cflow_mvtec_tgi_brick_1shot_seed0" / "version_0" / "config.yaml"
    assert (
        "demo_tgi_generate_brick_1shot_seed0" in tgi_run.read_text()
    )  # the augmented config read the generation
    again = demo_tgi_ad.main([*arguments, *smoke])  # everything exists: nothing is run again
    assert not (tmp_path / "demo_tgi_generate_brick_1shot_seed0" / "version_1").exists()
    assert again.split("Run here")[0] == markdown.split("Run here")[0]
    assert demo_tgi_ad.main([*arguments, "--report_only"]).strip() == markdown.split("Run here")[0].strip()


def test_topics_demo_script_compares_the_three_models(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_topics

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
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


@pytest.mark.parametrize("dataset", ["cifar10", "celeba64"])
def test_image_topic_demo_script_reports_reconstruction_purity_and_grids(
    dataset: str, tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_tvqvae_image

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    arguments = [
        "--dataset",
        dataset,
        "--vq_epochs",
        "1",
        "--topic_epochs",
        "1",
        "--topics",
        "3",
        "--dim",
        "16",
        "--prior_layers",
        "2",
        "--runs_dir",
        str(tmp_path),
    ]
    markdown = demo_tvqvae_image.main([*arguments, *smoke])
    assert f"{dataset} stand-in" in markdown and "reconstruction MSE" in markdown and "| 3 | 1 |" in markdown
    topic_run = demo_tvqvae_image.run_names(dataset)[1]
    assert (tmp_path / topic_run / "version_0" / "topic_samples.png").is_file()
    report = demo_tvqvae_image.main([*arguments, "--report_only"])
    assert report.strip() == markdown.split("Trained")[0].strip()


def test_styleflow_demo_script_tables_the_three_detectors_on_the_held_out_manipulation(
    tmp_path: Path, standin_root: Path, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_styleflow

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    arguments = ["--held_out", "FaceSwap", "--runs_dir", str(tmp_path)]
    markdown = demo_styleflow.main([*arguments, *smoke, "--trainer.limit_test_batches", "1.0"])  # every group
    assert "StyleGRU alone: unseen / seen AUC" in markdown and "| FaceSwap |" in markdown
    for tag in ("stylegru", "content", "styleflow"):
        results = tmp_path / demo_styleflow.run_name(tag, "FaceSwap", 1) / "version_0" / "results.csv"
        first = results.read_text().splitlines()[0]  # the latents came from the stand-in encoder: said first
        assert first.startswith("# STAND-INS:") and "style latents from the face autoencoder" in first, first
    report = demo_styleflow.main([*arguments, "--report_only"])
    assert report.strip() == markdown.split("Trained")[0].strip()
