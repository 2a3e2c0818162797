"""FingerprintNet: autoencoder shapes, the spectrum on a hand case, real-only data, and the two phases."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from datamodules.forensynths import ForenSynthsDataModule
from lightning_modules.fingerprintnet.module import FingerprintNetModule
from lightning_modules.fingerprintnet.networks import (
    DetectorInput,
    FingerprintAutoencoder,
    FingerprintGenerator,
)
from tests.conftest import CONFIGS
from tests.helpers import quiet_trainer, read_events


@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_each_autoencoder_keeps_the_size(stages: int) -> None:
    autoencoder = FingerprintAutoencoder(stages, width=32).eval()
    for size in (16, 32, 48):
        x = torch.rand(2, 3, size, size)
        out = autoencoder(x)
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    ups = [m for m in autoencoder.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(ups) == stages and all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in ups)
    with pytest.raises(ValueError, match=f"divisible by {2**stages}"):
        autoencoder(torch.rand(1, 3, 2**stages * 3 + 1, 16))


def test_generator_runs_the_drawn_autoencoder_per_image() -> None:
    generator = FingerprintGenerator([1, 2], width=16).eval()
    x = torch.rand(4, 3, 16, 16)
    choice = torch.tensor([0, 1, 1, 0])
    out = generator(x, choice)
    assert torch.allclose(out[0], generator.autoencoders[0](x[:1])[0], atol=1e-6)
    assert torch.allclose(out[2], generator.autoencoders[1](x[2:3])[0], atol=1e-6)


def test_spectrum_of_a_pure_sinusoid_peaks_at_its_bin() -> None:
    size, cycles = 32, 5
    rows = torch.arange(size, dtype=torch.float32)
    wave = 0.5 + 0.4 * torch.sin(2 * math.pi * cycles * rows / size)[:, None].expand(size, size)
    spectrum = DetectorInput("spectrum")(wave.expand(1, 3, size, size))
    assert spectrum.shape == (1, 3, size, size)
    assert spectrum.mean().abs() < 1e-4 and (spectrum.std() - 1).abs() < 1e-3  # standardized per image
    peak = divmod(int(spectrum[0, 0].argmax()), size)
    assert peak in {(size // 2 + cycles, size // 2), (size // 2 - cycles, size // 2)}  # vertical frequency 5


def test_representations_have_the_right_channels() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert DetectorInput("both")(x).shape == (2, 6, 16, 16)
    assert DetectorInput("residual_spectrum")(x).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="representation"):
        DetectorInput("wavelet")


def test_pseudo_fake_batch_is_one_to_one() -> None:
    module = FingerprintNetModule(
        backbone="resnet18", pretrained=False, ae_stages=[1, 2], ae_width=16, fake_jpeg_quality=(80, 90)
    )
    batch = {
        "image": torch.rand(3, 3, 16, 16),
        "label": torch.zeros(3, dtype=torch.long),
        "group": ["a", "b", "c"],
    }
    pair = module.pseudo_fake_batch(batch)
    assert pair["image"].shape == (6, 3, 16, 16) and pair["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(pair["image"][:3], batch["image"]) and pair["group"] == ["a", "b", "c"] * 2


def corrupt_every_fake(root: Path) -> int:
    count = 0
    for path in root.rglob("1_fake/*.png"):
        if "/test/" not in str(path):
            path.write_bytes(b"not an image")
            count += 1
    return count


def test_real_only_never_reads_a_fake_file(standin_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "cnndetection"
    shutil.copytree(standin_root / "forensynths_standin_tiny", root)
    assert corrupt_every_fake(root) > 0  # reading any of them would now raise (bad_files: error)
    dm = ForenSynthsDataModule(
        root=str(root), real_only=True, bad_files="error", num_workers=0, image_size=32
    )
    dm.setup("fit")
    for name in ("train", "val"):
        records = dm.datasets[name].records
        assert records and all(r.label == 0 and "1_fake" not in str(r.path) for r in records)
        for batch in dm.train_dataloader() if name == "train" else dm.val_dataloader():
            assert (batch["label"] == 0).all()


def test_both_phases_run_from_the_config_without_fake_files(
    run_cli, standin_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(standin_root / "forensynths_standin_tiny", root / "forensynths_standin_tiny")
    corrupt_every_fake(root)
    cli = run_cli(
        "fit",
        "--config",
        str(CONFIGS / "fingerprintnet.yaml"),
        "--model.init_args.ae_epochs",
        "1",
        "--model.init_args.ae_width",
        "32",
        "--trainer.max_epochs",
        "2",
        "--data.init_args.bad_files",
        "error",
        "--data.init_args.root",
        str(root),
    )
    module = cli.model
    assert cli.trainer.current_epoch == 2 and not module.in_autoencoder_phase
    assert not any(p.requires_grad for p in module.generator.parameters())  # frozen in the detector phase
    events = read_events(Path(cli.trainer.log_dir))
    scalars = set(events.Tags()["scalars"])
    assert {"train/ae_l1", "train/ae4_l1", "val/ae1_l1", "train/loss", "val/acc", "val/ap"} <= scalars
    assert len(events.Scalars("train/ae_l1")) == 2 and len(events.Scalars("train/loss")) == 2  # 2 steps each
    images = set(events.Tags()["images"])
    assert {f"pictures/ae{k}_{kind}" for k in (1, 4) for kind in ("reconstruction", "fingerprint")} <= images


class Snapshots(L.Callback):
    """Copies of the autoencoders' and the detector's parameters at the start of each epoch and at the end."""

    def __init__(self) -> None:
        self.taken: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def _take(self, module: FingerprintNetModule) -> None:
        copy = lambda net: [p.detach().clone() for p in net.parameters()]  # noqa: E731
        self.taken.append((copy(module.generator), copy(module.classifier)))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: FingerprintNetModule) -> None:
        self._take(pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: FingerprintNetModule) -> None:
        self._take(pl_module)


def test_phases_update_only_their_own_network(standin_root: Path) -> None:
    module = FingerprintNetModule(
        backbone="resnet18",
        pretrained=False,
        ae_stages=[1, 2],
        ae_width=16,
        ae_epochs=1,
        fake_jpeg_quality=None,
    )
    dm = ForenSynthsDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        real_only=True,
        batch_size=4,
        num_workers=0,
        image_size=32,
    )
    snapshots = Snapshots()
    trainer = quiet_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0, callbacks=[snapshots])
    trainer.fit(module, datamodule=dm)
    (ae_0, det_0), (ae_1, det_1), (ae_2, det_2) = snapshots.taken

    def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))

    assert not same(ae_0, ae_1) and same(det_0, det_1)  # epoch 0: autoencoders only
    assert same(ae_1, ae_2) and not same(det_1, det_2)  # epoch 1: detector only, autoencoders frozen
