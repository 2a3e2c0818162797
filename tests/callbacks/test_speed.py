"""The speed callbacks change how a module runs, never what it computes or how its checkpoints are named."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from callbacks import ChannelsLast, CompileNetworks
from lightning_modules.bihpf.module import BiHPFModule
from tests.helpers import quiet_trainer


def tiny_bihpf() -> BiHPFModule:
    torch.manual_seed(0)
    return BiHPFModule(backbone="resnet18", pretrained=False)


def batches(count: int = 2) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {"image": torch.rand(2, 3, 32, 32, generator=generator), "label": torch.tensor([0, 1])}
        for _ in range(count)
    ]


def fit(module: BiHPFModule, callbacks: list[L.Callback], root: Path) -> L.Trainer:
    trainer = quiet_trainer(max_steps=2, limit_val_batches=0, default_root_dir=root, callbacks=callbacks)
    trainer.fit(module, DataLoader(batches(), batch_size=None))
    return trainer


def test_compiled_networks_keep_their_outputs_and_checkpoint_keys(tmp_path: Path) -> None:
    images = batches(1)[0]["image"]
    plain, compiled = tiny_bihpf(), tiny_bihpf()
    callback = CompileNetworks(backend="eager")
    callback.setup(None, compiled, "fit")
    # only the network with parameters is compiled; the metric collections beside it are not
    assert callback.compiled == ["net"]
    assert compiled.net._compiled_call_impl is not None and plain.net._compiled_call_impl is None
    plain.eval(), compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled.net(images), plain.net(images))
    assert list(compiled.state_dict()) == list(plain.state_dict())
    # a module trained compiled saves a checkpoint an uncompiled one loads as is
    trainer = fit(compiled, [CompileNetworks(modules=["net"], backend="eager")], tmp_path)
    trainer.save_checkpoint(tmp_path / "compiled.ckpt")
    state = torch.load(tmp_path / "compiled.ckpt", weights_only=True)["state_dict"]
    tiny_bihpf().load_state_dict(state)


def test_compile_names_the_networks_a_module_has_when_asked_for_one_it_lacks() -> None:
    with pytest.raises(ValueError, match="no network named backbone.*children: .*net"):
        CompileNetworks(modules=["backbone"]).setup(None, tiny_bihpf(), "fit")


def test_channels_last_converts_weights_and_image_batches_without_changing_values(tmp_path: Path) -> None:
    module = tiny_bihpf()
    callback = ChannelsLast()
    callback.setup(None, module, "fit")
    conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    batch = batches(1)[0]
    original = batch["image"].clone()
    callback.on_train_batch_start(None, module, batch, 0)
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    assert not batch["image"].is_contiguous() and torch.equal(batch["image"], original)
    fit(module, [callback], tmp_path)  # trains in that layout


def test_cli_speed_keys_add_the_callbacks(standin_root: Path, tmp_path: Path) -> None:
    import cli
    from tests.conftest import smoke_argv

    def trainer_callbacks(*more: str) -> set[type]:
        argv = smoke_argv(["--config", "configs/cnndetection.yaml", *more], standin_root, tmp_path)
        return {type(c) for c in cli.main(argv, run=False).trainer.callbacks}

    assert {CompileNetworks, ChannelsLast} <= trainer_callbacks(
        "--compile", "true", "--channels_last", "true"
    )
    assert not {CompileNetworks, ChannelsLast} & trainer_callbacks()
