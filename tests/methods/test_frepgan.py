"""FrePGAN: the generator's shape and type, gradient paths, the D -> G -> C order, and checkpointed optimizers."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from datamodules.forensynths import ForenSynthsDataModule
from lightning_modules.components.binary_head import BinaryLogitNet
from lightning_modules.components.patch_discriminator import PatchDiscriminator
from lightning_modules.frepgan.module import FrePGANModule
from lightning_modules.frepgan.networks import SpectralPerturbationGenerator
from tests.conftest import CONFIGS
from tests.helpers import quiet_trainer, read_events


def randomize_last_layer(generator: SpectralPerturbationGenerator) -> None:
    """The last convolution starts at zero (G = 0 at the start); give it weights to test what flows through."""
    last = [m for m in generator.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.normal_(last.weight, std=0.05)


def small_module(**kwargs) -> FrePGANModule:
    options = dict(
        backbone="resnet18",
        pretrained=False,
        generator_width=8,
        generator_blocks=1,
        discriminator_width=8,
        perturbation_scale=1.0,
    )
    options.update(kwargs)
    return FrePGANModule(**options)


def test_generator_starts_at_zero_and_returns_a_real_map_of_the_input_shape() -> None:
    generator = SpectralPerturbationGenerator(width=8, blocks=1)
    x = torch.rand(2, 3, 20, 24)
    assert torch.equal(generator(x), torch.zeros_like(x))
    randomize_last_layer(generator)
    out = generator(x)
    assert out.shape == x.shape and out.dtype == torch.float32 and not torch.is_complex(out)
    assert out.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert generator(x).shape == x.shape


def test_bound_limits_the_perturbation() -> None:
    generator = SpectralPerturbationGenerator(width=8, blocks=1, bound_eps=0.1)
    randomize_last_layer(generator)
    assert generator(torch.rand(2, 3, 16, 16)).abs().max() <= 0.1


def test_sizes_not_divisible_by_four_fail_clearly() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        SpectralPerturbationGenerator(width=8, blocks=1)(torch.rand(1, 3, 18, 18))


def test_gradients_reach_the_generator_through_d_and_through_c() -> None:
    generator = SpectralPerturbationGenerator(width=8, blocks=1)
    randomize_last_layer(generator)
    discriminator = PatchDiscriminator(width=8)
    classifier = BinaryLogitNet("resnet18", pretrained=False)
    x = torch.rand(4, 3, 32, 32)
    for head in (discriminator, classifier):
        generator.zero_grad()
        head(x + generator(x)).sum().backward()
        grads = [p.grad for p in generator.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), type(head).__name__


def test_classifier_loss_leaves_the_generator_alone_by_default() -> None:
    module = small_module()
    randomize_last_layer(module.generator)
    batch = {"image": torch.rand(4, 3, 32, 32), "label": torch.tensor([0, 1, 0, 1])}
    with torch.no_grad():
        perturbation = module.generator(batch["image"])
    logits = module.classifier(batch["image"] + perturbation)
    module.loss(logits, batch).backward()
    assert all(p.grad is None for p in module.generator.parameters())


def test_test_perturb_false_scores_the_clean_image() -> None:
    module = small_module(test_perturb=False).eval()
    randomize_last_layer(module.generator)
    batch = {"image": torch.rand(2, 3, 32, 32)}
    assert torch.equal(module.logits(batch), module.classifier(batch["image"]))
    assert module.results_name == "results_unperturbed"
    module.test_perturb = True
    assert not torch.equal(module.logits(batch), module.classifier(batch["image"]))


class StepRecorder(L.Callback):
    """Wraps each optimizer's ``step`` to record which network stepped, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, optimizer in zip("DGC", trainer.optimizers, strict=True):
            original = optimizer.step

            def step(*args, _name=name, _original=original, **kwargs):
                self.calls.append(_name)
                return _original(*args, **kwargs)

            optimizer.step = step


def test_each_optimizer_steps_once_per_iteration_in_order(standin_root: Path) -> None:
    module = small_module()
    networks = [module.discriminator, module.generator, module.classifier]
    for optimizer, network in zip(module.configure_optimizers(), networks, strict=True):
        assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
            id(p) for p in network.parameters()
        }
    recorder = StepRecorder()
    datamodule = ForenSynthsDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        batch_size=8,
        num_workers=0,
        image_size=32,
    )
    trainer = quiet_trainer(max_steps=9, limit_train_batches=3, limit_val_batches=0, callbacks=[recorder])
    trainer.fit(module, datamodule=datamodule)
    assert recorder.calls == list("DGC") * 3


def test_checkpoint_keeps_all_three_optimizer_states_and_resume_restores_them(run_cli) -> None:
    config = str(CONFIGS / "frepgan.yaml")
    # D and G step only on a batch holding reals and fakes: batches of 8 (of 24 + 24 images) always do in practice
    # (batches of 4 can all be one class, and with seed 0 and the Lite backbone both of them are)
    fit = run_cli("fit", "--config", config, "--data.init_args.batch_size", "8")
    checkpoint = torch.load(Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    states = checkpoint["optimizer_states"]
    assert len(states) == 3 and all(state["state"] for state in states)
    assert checkpoint["state_dict"]["perturbation_scale"] == pytest.approx(0.0)  # epoch 0 of the ramp
    events = read_events(Path(fit.trainer.log_dir))
    assert {"pictures/perturbation", "pictures/perturbation_spectrum", "pictures/perturbed"} <= set(
        events.Tags()["images"]
    )
    assert {"schedule/perturbation_scale", "train/d_acc", "train/perturbation_l1", "train/loss_d"} <= set(
        events.Tags()["scalars"]
    )

    resumed = run_cli(
        "fit",
        "--config",
        config,
        "--ckpt_path",
        "last",
        "--trainer.max_epochs",
        "2",
        "--trainer.callbacks+",
        "tests.methods.test_frepgan.CaptureOptimizers",
    )
    restored = next(c for c in resumed.trainer.callbacks if isinstance(c, CaptureOptimizers)).states
    assert len(restored) == 3
    for saved, loaded in zip(states, restored, strict=True):
        first = next(iter(saved["state"]))
        assert torch.equal(saved["state"][first]["exp_avg"], loaded["state"][first]["exp_avg"])
        assert saved["param_groups"][0]["lr"] == loaded["param_groups"][0]["lr"]
    # the ramp covers half of max_epochs=2, i.e. one epoch: epoch 1 of the resumed run is at the end value
    assert resumed.model.perturbation_scale == pytest.approx(1.0)


class CaptureOptimizers(L.Callback):
    """Records the optimizers' state right after a resume restored it."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.states = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]
