"""Every YAML in configs/ parses and runs: method configs fit + test with the smoke overlay; overlays on top
of every method config. Also resume from last.ckpt, test tables in the run folder, and predict's CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from benchmarks.config_introspection import (
    CONFIGS,
    accepted_arguments,
    config_classes,
    in_run_order,
    is_method_config,
    prerequisites,
)
from tests.helpers import predictions_file

ALL_CONFIGS = sorted(CONFIGS.glob("*.yaml"))


METHOD_CONFIGS = [p for p in ALL_CONFIGS if is_method_config(p)]
OVERLAYS = [p for p in ALL_CONFIGS if not is_method_config(p)]


def test_configs_that_read_other_runs_come_after_them() -> None:
    advanced = CONFIGS / "vit_aal_advanced_cifar100.yaml"
    assert prerequisites(advanced) == {"model.init_args.links_path": "vit_aal_cifar100"}
    order = in_run_order(METHOD_CONFIGS)
    assert sorted(order) == METHOD_CONFIGS
    assert order.index(advanced) > order.index(CONFIGS / "vit_aal_cifar100.yaml")
    # a data argument counts too, and chains: face autoencoder -> StyleGRU -> StyleFlow
    assert prerequisites(CONFIGS / "styleflow.yaml") == {
        "model.init_args.stylegru_path": "stylegru",
        "model.init_args.style_encoder": "face_autoencoder",
    }
    position = {p.stem: i for i, p in enumerate(order)}
    assert position["face_autoencoder"] < position["stylegru"] < position["styleflow"]


def test_the_glob_finds_both_kinds() -> None:
    assert METHOD_CONFIGS and {p.name for p in OVERLAYS} >= {"smoke.yaml", "demo.yaml"}


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=lambda p: p.stem)
def test_print_config_resolves(config: Path, capsys: pytest.CaptureFixture[str], run_cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--config", str(config), "--print_config", smoke=False)
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    original = yaml.safe_load(config.read_text())
    assert printed["model"]["class_path"] == original["model"]["class_path"]
    for key, value in original["model"].get("init_args", {}).items():
        assert printed["model"]["init_args"][key] == value
    assert printed["data"]["class_path"] == original["data"]["class_path"]


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=lambda p: p.stem)
def test_fit_then_test_and_predict_from_the_checkpoint_file(
    config: Path, run_cli, fitted_runs, standin_root: Path
) -> None:
    reads = fitted_runs.prerequisites(config)
    run_dir = fitted_runs(config)  # fitted once per session: other tests read the same run
    assert run_dir.parent.name == config.stem and run_dir.name == "version_0"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and (run_dir / "config.yaml").is_file()
    assert torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)["global_step"] > 0

    # an explicit checkpoint file: LightningCLI rebuilds the model from the hyper-parameters saved in it
    test = run_cli("test", "--config", str(config), "--ckpt_path", str(checkpoint.resolve()), *reads)
    assert Path(test.trainer.log_dir) == run_dir  # the table lands beside the model it evaluates
    assert list(run_dir.glob("*.md")) and (run_dir / "test_config.yaml").is_file()
    # classifiers, detectors; anti-spoofing; anomaly; topic models (VQ pre-trainings: their MSE; images: purity)
    headline = {"test/acc", "test/acer", "test/image_auroc", "test/npmi", "test/mse", "test/purity"}
    assert headline & set(test.trainer.callback_metrics), test.trainer.callback_metrics
    if config_classes(config)["model"].predict_step is L.LightningModule.predict_step:
        return  # a pre-training stage (VQ, face autoencoder, generation) predicts nothing
    # without predict_dir every layout scores its test split; the CSV is this predict's own (a run predicted on
    # before keeps its file: this one may be predictions_2.csv)
    # two batches: the predict path, not the whole test split (the run says it stopped early)
    cut = ["--trainer.limit_predict_batches", "2"]
    predict = run_cli("predict", "--config", str(config), "--ckpt_path", str(checkpoint), *reads, *cut)
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(value != "" for key, value in rows[0].items() if key != "path")  # logits have no path
    import pandas

    for table in run_dir.glob("*.csv"):  # plain CSVs: read as they are, the header on the first line
        columns = list(pandas.read_csv(table).columns)
        assert columns and not str(columns[0]).startswith("#"), (table.name, columns)


def overlay_applies(overlay: Path, config: Path) -> bool:
    """An overlay applies to a method config when the config's classes accept every key the overlay sets; an
    overlay that names its own data class (Fashion-MNIST for a CIFAR config) applies where the model is a
    classifier's and that class accepts its keys."""
    content = yaml.safe_load(overlay.read_text()) or {}
    classes = config_classes(config)
    own_data = (content.get("data") or {}).get("class_path")
    if own_data:
        import importlib

        module, name = own_data.rsplit(".", 1)
        classes = {**classes, "data": getattr(importlib.import_module(module), name)}
        if "num_classes" not in accepted_arguments(classes["model"]):
            return False
    for key in ("model", "data"):
        keys = set((content.get(key) or {}).get("init_args") or {})
        if keys - accepted_arguments(classes[key]):
            return False
    return True


PAIRS = [(c, o) for o in OVERLAYS for c in METHOD_CONFIGS if overlay_applies(o, c)]


def test_smoke_applies_to_every_method_config_and_every_overlay_to_some() -> None:
    assert all(overlay_applies(CONFIGS / "smoke.yaml", c) for c in METHOD_CONFIGS)
    for overlay in OVERLAYS:
        assert any(o == overlay for _, o in PAIRS), f"{overlay.name} applies to no method config"


@pytest.mark.parametrize("config, overlay", PAIRS, ids=lambda p: p.stem)
def test_overlays_parse_on_the_configs_they_apply_to(config: Path, overlay: Path, run_cli, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--config", str(config), "--config", str(overlay), "--print_config", smoke=False)
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in (yaml.safe_load(overlay.read_text()).get("trainer") or {}).items():
        assert printed["trainer"][key] == value


def test_demo_overlay_runs_under_smoke(run_cli) -> None:
    """The demo's own keys (backbone, image size, workers) run; smoke only shortens it."""
    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "bihpf.yaml"),
        "--config",
        str(CONFIGS / "demo.yaml"),
        "--data.init_args.num_workers",
        "1",
        imagenet=False,  # the demo's own backbone, not the packaged one
    )
    assert cli.model.hparams.backbone == "resnet18" and cli.trainer.global_step == 2


def test_resume_from_last_continues_the_run(run_cli, tmp_path: Path) -> None:
    config = str(CONFIGS / "cnndetection.yaml")
    first = run_cli("fit", "--config", config)
    assert first.trainer.global_step == 2
    resumed = run_cli("fit", "--config", config, "--ckpt_path", "last", "--trainer.max_epochs", "2")
    assert resumed.trainer.current_epoch == 2 and resumed.trainer.global_step == 4
    assert resumed.trainer.log_dir == first.trainer.log_dir  # same run folder, TensorBoard continues
    saved = torch.load(Path(first.trainer.log_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["epoch"] == 1 and saved["global_step"] == 4


def test_ckpt_path_last_without_a_run_is_a_clear_error(run_cli) -> None:
    import cli

    with pytest.raises(cli.CheckpointNotFoundError, match="no last.ckpt under"):
        run_cli("test", "--config", str(CONFIGS / "cnndetection.yaml"), "--ckpt_path", "last")


def test_predict_writes_one_row_per_image(run_cli, fitted_runs, standin_root: Path) -> None:
    config = str(CONFIGS / "bihpf.yaml")
    run_dir = fitted_runs(CONFIGS / "bihpf.yaml")
    folder = standin_root / "forensynths_standin_tiny" / "test" / "pixelshuffle" / "coffee"
    predict = run_cli(
        "predict",
        "--config",
        config,
        "--ckpt_path",
        str(run_dir / "checkpoints" / "last.ckpt"),
        "--data.init_args.predict_dir",
        str(folder),
    )
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    images = sorted(str(p) for p in folder.rglob("*.png"))
    assert sorted(r["path"] for r in rows) == images
    for row in rows:
        prob = float(row["fake_prob"])
        assert 0.0 <= prob <= 1.0 and int(row["pred_label"]) == int(prob > 0.5)


# a CPU without native bf16 (AVX-512 BF16 / AMX) emulates it ~10x slower: the 3D CNN's one step takes 5 min at
# the smoke batch of 4 clips of 32 px there, so its bf16 step uses 2 clips of 16 px
BF16_SMALLER = {"styleflow": ["--data.init_args.batch_size", "2", "--data.init_args.image_size", "16"]}


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=lambda p: p.stem)
def test_bf16_mixed_smoke_step_on_cpu(config: Path, run_cli, prerequisite_runs) -> None:
    """Every method trains one step under bf16 autocast with a finite loss (FFT filters and losses keep their
    float32 islands; see test_bihpf_filters and test_frepgan for the dtypes inside)."""
    reads = [*prerequisite_runs(config), *BF16_SMALLER.get(config.stem, [])]
    cli = run_cli(
        "fit",
        "--config",
        str(config),
        *reads,
        "--trainer.precision",
        "bf16-mixed",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.limit_val_batches",
        "1",
    )
    assert cli.trainer.precision == "bf16-mixed"
    losses = {
        k: v for k, v in cli.trainer.callback_metrics.items() if k.startswith("train/") and "acc" not in k
    }
    if any(p.requires_grad for p in cli.model.parameters()):  # precomputed logits have nothing to train
        assert losses and all(torch.isfinite(v) for v in losses.values()), losses
    assert all(torch.isfinite(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")), (
        cli.trainer.callback_metrics
    )
