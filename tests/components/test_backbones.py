"""The backbone factory: local weight files load through timm, and mistakes give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from lightning_modules.components.backbones import BackboneWeightsError, create_backbone


def test_pretrained_path_loads_local_weights_and_replaces_the_head(tmp_path: Path) -> None:
    source = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    model = create_backbone("resnet18", pretrained_path=str(weights), num_classes=1)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_mean, source.layer4[1].bn2.running_mean)
    assert model.get_classifier().out_features == 1  # the 1000-way head was dropped, not loaded


def test_pretrained_path_adapts_the_stem_to_one_channel(tmp_path: Path) -> None:
    source = timm.create_model("resnet18", pretrained=False)
    weights = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), weights)
    model = create_backbone("resnet18", pretrained_path=str(weights), in_chans=1)
    assert model.conv1.weight.shape[1] == 1
    assert torch.allclose(model.conv1.weight[:, 0], source.conv1.weight.sum(dim=1), atol=1e-5)


def test_missing_weights_file_and_unknown_name_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(BackboneWeightsError, match="is not a file"):
        create_backbone("resnet18", pretrained_path=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="unknown backbone 'resnet_nope'"):
        create_backbone("resnet_nope")


def test_offline_pretrained_download_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        BackboneWeightsError,
        match="--model.init_args.pretrained false, or a local weights file as --model.init_args.pretrained_path",
    ):
        create_backbone("resnet18", pretrained=True)
