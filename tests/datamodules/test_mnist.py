"""The MNIST family: IDX files (gzipped or not, and what a broken one says), the datamodule's sizes, channels and
splits, the download path over loopback, and the real Fashion-MNIST that `make install` provides."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from datamodules.base import DatasetNotFoundError
from datamodules.idx_files import IDXFileError, read_idx, write_idx
from datamodules.mnist import DEFAULT_ROOTS, MNISTDataModule


@pytest.fixture(scope="module")
def mnist_standin(standin_root: Path) -> Path:
    MNISTDataModule(root=str(standin_root), synthetic=True, standin_size="tiny").prepare_data()
    return standin_root / "mnist_standin_tiny"


def test_idx_files_round_trip_plain_and_gzipped(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("images-idx3-ubyte", "images-idx3-ubyte.gz"):
        write_idx(tmp_path / name, images)
        assert np.array_equal(read_idx(tmp_path / name), images)
    floats = np.array([1.5, -2.0], dtype=np.float32)
    write_idx(tmp_path / "f.gz", floats)
    assert read_idx(tmp_path / "f.gz").tolist() == [1.5, -2.0]
    raw = (tmp_path / "images-idx3-ubyte").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3]) and raw[4:8] == (2).to_bytes(4, "big")  # the published header


def test_broken_idx_files_name_the_file_and_the_expected_size(tmp_path: Path) -> None:
    write_idx(tmp_path / "full", np.zeros((10, 28, 28), np.uint8))
    (tmp_path / "short-idx3-ubyte").write_bytes((tmp_path / "full").read_bytes()[:-100])
    with pytest.raises(
        IDXFileError, match=r"short-idx3-ubyte: truncated: shape \(10, 28, 28\) needs 7840 bytes"
    ):
        read_idx(tmp_path / "short-idx3-ubyte")
    (tmp_path / "short.gz").write_bytes(gzip.compress((tmp_path / "full").read_bytes())[:-40])
    with pytest.raises(IDXFileError, match="short.gz: not a readable gzip file"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "text").write_text("hello world")
    with pytest.raises(IDXFileError, match="text: not an IDX file"):
        read_idx(tmp_path / "text")


def test_stand_in_batches_at_every_size_and_channel_count(mnist_standin: Path) -> None:
    root = str(mnist_standin.parent)
    padded = MNISTDataModule(root=root, synthetic=True, standin_size="tiny", num_workers=0, batch_size=8)
    padded.setup("fit")
    sample = padded.datasets["test"][0]
    assert sample["image"].shape == (3, 32, 32) and sample["group"] in padded.class_names
    assert sample["image"][:, :2].abs().sum() == 0 and sample["image"][:, :, -2:].abs().sum() == 0  # zero pad
    original = read_idx(mnist_standin / "t10k-images-idx3-ubyte.gz")[0]
    assert np.array_equal((sample["image"][0, 2:30, 2:30].numpy() * 255).round(), original)
    gray = MNISTDataModule(root=root, synthetic=True, standin_size="tiny", channels=1, num_workers=0)
    gray.setup("fit")
    assert gray.datasets["train"][0]["image"].shape == (1, 32, 32)
    resized = MNISTDataModule(
        root=root, synthetic=True, standin_size="tiny", to_size="resize", image_size=64, num_workers=0
    )
    resized.setup("fit")
    assert resized.datasets["test"][0]["image"].shape == (3, 64, 64)
    assert padded.num_classes == 10 and padded.class_names[0] == "T-shirt/top"
    assert padded.flip and not MNISTDataModule(dataset="mnist").flip  # garments are flipped, digits not
    with pytest.raises(ValueError, match="to_size pad cannot shrink"):
        MNISTDataModule(image_size=16)


def test_long_tailed_calibration_and_small_data_splits(mnist_standin: Path) -> None:
    common = dict(root=str(mnist_standin.parent), synthetic=True, standin_size="tiny", num_workers=0)
    data = MNISTDataModule(imbalance_factor=10, calibration_fraction=0.2, **common)
    data.setup("fit")
    counts = np.bincount(data.datasets["train"].labels, minlength=10)
    assert counts[0] > 3 * counts[-1]  # long-tailed
    assert len(data.datasets["calibration"]) > 0 and len(data.datasets["test"]) == 40
    few = MNISTDataModule(samples_per_class=3, calibration_fraction=0.0, **common)
    few.setup("fit")
    assert np.bincount(few.datasets["train"].labels).tolist() == [3] * 10


def test_missing_files_and_mismatched_labels_are_one_line(tmp_path: Path, mnist_standin: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"root=.*absent.*missing: train-images-idx3-ubyte"):
        MNISTDataModule(root=str(tmp_path / "absent"), download=False).prepare_data()
    folder = tmp_path / "torchvision" / "FashionMNIST" / "raw"  # torchvision's layout, unpacked
    folder.mkdir(parents=True)
    for path in mnist_standin.glob("*.gz"):
        (folder / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
    data = MNISTDataModule(root=str(tmp_path / "torchvision"), download=False, num_workers=0)
    data.prepare_data()
    data.setup("fit")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(IDXFileError, match=r"t10k-images-idx3-ubyte holds 40 images but .* 3 labels"):
        MNISTDataModule(root=str(tmp_path / "torchvision"), download=False).read_split(train=False)


def test_download_over_loopback_is_checksummed(
    tmp_path: Path, mnist_standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real download path (mirror, MD5, resumable file, read), served from this machine."""
    from torchvision.datasets import KMNIST

    served = tmp_path / "served"
    shutil.copytree(mnist_standin, served)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mirror = f"http://127.0.0.1:{server.server_port}/"
        resources = [(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in served.glob("*.gz")]
        monkeypatch.setattr(KMNIST, "mirrors", ["http://127.0.0.1:9/", mirror])  # the first does not answer
        monkeypatch.setattr(KMNIST, "resources", resources)
        data = MNISTDataModule(dataset="kmnist", root=str(tmp_path / "kmnist"), num_workers=0)
        data.prepare_data()
        data.setup("fit")
        assert data.class_names[1] == "ki" and len(data.datasets["test"]) == 40
        monkeypatch.setattr(KMNIST, "resources", [(n, "0" * 32) for n, _ in resources])
        with pytest.raises(DatasetNotFoundError, match="differs from the published"):
            MNISTDataModule(dataset="kmnist", root=str(tmp_path / "again")).prepare_data()
    finally:
        server.shutdown()


@pytest.mark.skipif(
    not Path(DEFAULT_ROOTS["fashion_mnist"]).is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_the_installed_fashion_mnist_is_the_official_one() -> None:
    data = MNISTDataModule(download=False)
    data.prepare_data()
    train_images, train_labels = data.read_split(train=True)
    test_images, test_labels = data.read_split(train=False)
    assert train_images.shape == (60000, 28, 28, 3) and test_images.shape == (10000, 28, 28, 3)
    assert (
        np.bincount(train_labels).tolist() == [6000] * 10 and np.bincount(test_labels).tolist() == [1000] * 10
    )
    assert data.components() == [(f"data: {DEFAULT_ROOTS['fashion_mnist']}", False)]
