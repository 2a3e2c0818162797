"""The classification module and the CIFAR networks: sizes as published, soft targets, best-epoch error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lightning_modules.classification.module import ImageClassifierModule
from lightning_modules.components.backbones import BackboneWeightsError, create_backbone
from lightning_modules.outputs.tables import read_result_table


@pytest.mark.parametrize(
    "name, classes, millions",
    [
        ("cifar_resnet110", 10, 1.73),  # He et al.: 1.7 M
        ("cifar_densenet40", 10, 1.06),  # Huang et al.: 1.0 M
        ("cifar_wrn28_10", 10, 36.5),  # Zagoruyko & Komodakis: 36.5 M
        ("cifar_pyramidnet110_a64", 100, 1.73),  # DCutMix's table: 1.7 M
    ],
)
def test_cifar_networks_have_their_published_sizes(name: str, classes: int, millions: float) -> None:
    model = create_backbone(name, num_classes=classes)
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(millions, abs=0.05)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, classes)
    assert model.get_classifier().out_features == classes


def test_cifar_network_local_weights_and_missing_weights(tmp_path: Path) -> None:
    source = create_backbone("cifar_resnet20", num_classes=10)
    torch.save(source.state_dict(), tmp_path / "r20.pth")
    loaded = create_backbone("cifar_resnet20", pretrained_path=str(tmp_path / "r20.pth"), num_classes=100)
    assert torch.equal(loaded.stem[0].weight, source.stem[0].weight) and loaded.head.out_features == 100
    with pytest.raises(BackboneWeightsError, match="no downloadable weights"):
        create_backbone("cifar_resnet20", pretrained=True)


def test_soft_targets_replace_labels_in_the_loss() -> None:
    module = ImageClassifierModule(backbone="cifar_resnet20", num_classes=3)
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    expected = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    assert module.loss(logits, {"label": torch.tensor([0, 1]), "target": target}) == pytest.approx(
        expected.item()
    )
    assert module.loss(logits, {"label": torch.tensor([0, 1])}) == pytest.approx(
        F.cross_entropy(logits, torch.tensor([0, 1])).item()
    )


def test_best_epoch_error_is_logged_and_checkpointed(run_cli) -> None:
    from tests.conftest import CONFIGS

    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "mixup_cifar100.yaml"),
        "--model.init_args.backbone",
        "cifar_resnet20",
        "--trainer.max_epochs",
        "2",
    )
    metrics = cli.trainer.callback_metrics
    assert metrics["val/err_best"] <= metrics["val/err"] + 1e-6
    assert float(cli.model.best_val_acc) == pytest.approx(1 - float(metrics["val/err_best"]))
    saved = torch.load(Path(cli.trainer.log_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    assert float(saved["state_dict"]["best_val_acc"]) == pytest.approx(float(cli.model.best_val_acc))

    test = run_cli(
        "test",
        "--config",
        str(CONFIGS / "mixup_cifar100.yaml"),
        "--model.init_args.backbone",
        "cifar_resnet20",
        "--ckpt_path",
        "last",
    )
    (row,) = read_result_table(Path(test.trainer.log_dir) / "results.csv")
    logged = test.trainer.callback_metrics
    assert row["acc"] == pytest.approx(100 * float(logged["test/acc"]), abs=1e-3)
    assert row["err"] == pytest.approx(100 - row["acc"], abs=1e-3)
    assert row["nll"] == pytest.approx(float(logged["test/nll"]), abs=1e-3)
    assert "uncalibrated" in (Path(test.trainer.log_dir) / "results.md").read_text()


def test_unknown_normalization_fails_clearly() -> None:
    with pytest.raises(ValueError, match="normalization must be one of"):
        ImageClassifierModule(backbone="cifar_resnet20", normalization="zscore")


def test_the_dcutmix_configs_normalize_with_the_official_code_s_statistics() -> None:
    import yaml

    from lightning_modules.components.backbones import input_normalizer
    from tests.conftest import CONFIGS

    official = input_normalizer("dcutmix")
    assert torch.allclose(official.std.flatten(), torch.tensor([0.2023, 0.1994, 0.2010]))
    assert torch.allclose(input_normalizer("cifar").std.flatten(), torch.tensor([0.2470, 0.2435, 0.2616]))
    for name in ("dcutmix", "dmixup", "cutmix", "mixup"):
        config = yaml.safe_load((CONFIGS / f"{name}_cifar100.yaml").read_text())
        assert config["model"]["init_args"]["normalization"] == "dcutmix"
