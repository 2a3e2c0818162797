"""CIFAR and logits datamodules: the stand-in in CIFAR's format, long tails, hold-outs, folders, bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.base import DatasetNotFoundError
from datamodules.cifar import CIFARDataModule
from datamodules.class_subsets import long_tailed_counts, stratified_holdout
from datamodules.logits import LogitsDataModule
from datamodules.logits_files import load_logits_file, save_logits_file


def cifar(root: Path, **kwargs) -> CIFARDataModule:
    options = dict(root=str(root), synthetic=True, standin_size="tiny", batch_size=16, num_workers=0)
    options.update(kwargs)
    dm = CIFARDataModule(**options)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_long_tailed_profile_and_stratified_holdout() -> None:
    assert long_tailed_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    labels = np.repeat(np.arange(3), [20, 9, 3])
    kept, held = stratified_holdout(labels, 0.1, seed=0)
    assert np.bincount(labels[held], minlength=3).tolist() == [2, 0, 0]  # floor: the tail gets none
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(len(labels)))


def test_standin_is_read_by_torchvision_in_both_cifar_layouts(standin_root: Path) -> None:
    ten = cifar(standin_root)
    batch = next(iter(ten.train_dataloader()))
    assert batch["image"].shape == (16, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert ten.num_classes == 10 and set(batch["group"]) <= set(ten.class_names)
    hundred = cifar(standin_root, dataset="cifar100")
    assert hundred.num_classes == 100
    assert int(next(iter(hundred.test_dataloader()))["label"].max()) < 100
    folder = standin_root / "cifar_standin_tiny" / "cifar-10-batches-py"
    with open(folder / "data_batch_1", "rb") as handle:
        assert pickle.load(handle)["data"].shape[1] == 3072  # CIFAR's own flat row format


def test_long_tailed_train_split_and_calibration_split(standin_root: Path) -> None:
    dm = cifar(standin_root, imbalance_factor=10, calibration_fraction=0.2)
    train = np.bincount(dm.datasets["train"].labels, minlength=10)
    held = np.bincount(dm.datasets["calibration"].labels, minlength=10)
    total = train + held
    assert total[0] > total[9] and total[0] / total[9] == pytest.approx(10, rel=0.2)
    assert (held == (0.2 * total).astype(int)).all()
    assert len(dm.datasets["test"]) == 360  # test stays balanced and whole
    assert dm.val_dataloader().dataset is dm.datasets["calibration"]


def test_image_folder_mode_and_its_errors(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for c, color in (("apple", 200), ("pear", 50)):
            for i in range(3):
                path = tmp_path / split / c / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((20, 24, 3), color, np.uint8)).save(path)
    dm = CIFARDataModule(
        root=str(tmp_path), dataset="folder", num_workers=0, batch_size=4, calibration_fraction=0.34
    )
    dm.setup("fit")
    assert dm.num_classes == 2 and dm.class_names == ["apple", "pear"]
    assert next(iter(dm.test_dataloader()))["image"].shape[-2:] == (32, 32)
    (tmp_path / "test" / "plum").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"classes \['apple', 'pear', 'plum'\] differ"):
        CIFARDataModule(root=str(tmp_path), dataset="folder", num_workers=0).setup("fit")


def test_missing_cifar_offline_is_one_clear_line(tmp_path: Path) -> None:
    dm = CIFARDataModule(root=str(tmp_path / "none"), download=False, num_workers=0)
    with pytest.raises(DatasetNotFoundError) as error:
        dm.prepare_data()
    assert "synthetic true" in str(error.value) and "cs.toronto.edu" in str(error.value)


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="imbalance_factor must be >= 1"):
        CIFARDataModule(imbalance_factor=0.5)
    with pytest.raises(ValueError, match="dataset must be cifar10, cifar100 or folder"):
        CIFARDataModule(dataset="mnist")


def test_logits_files_in_three_formats(tmp_path: Path) -> None:
    cal = (torch.randn(20, 4), torch.randint(4, (20,)))
    test = (torch.randn(30, 4), torch.randint(4, (30,)))
    npz = save_logits_file(tmp_path / "l.npz", cal, test)
    torch.save(
        {"cal_logits": cal[0], "cal_labels": cal[1], "test_logits": test[0], "test_labels": test[1]},
        tmp_path / "l.pt",
    )
    with open(tmp_path / "l.p", "wb") as handle:  # NN_calibration's layout, labels as (N, 1)
        pickle.dump(
            ((cal[0].numpy(), cal[1].numpy()[:, None]), (test[0].numpy(), test[1].numpy()[:, None])), handle
        )
    for path in (npz, tmp_path / "l.pt", tmp_path / "l.p"):
        tensors = load_logits_file(path)
        assert torch.allclose(tensors["test_logits"], test[0]) and torch.equal(tensors["cal_labels"], cal[1])
    dm = LogitsDataModule(path=str(npz))
    assert dm.num_classes == 4 and next(iter(dm.calibration_dataloader()))["logits"].shape == (20, 4)


def test_logits_file_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="is not a file"):
        load_logits_file(tmp_path / "missing.npz")
    np.savez(tmp_path / "partial.npz", cal_logits=np.zeros((2, 3)))
    with pytest.raises(KeyError, match="lacks"):
        load_logits_file(tmp_path / "partial.npz")
    np.savez(
        tmp_path / "range.npz",
        cal_logits=np.zeros((2, 3)),
        cal_labels=np.array([0, 5]),
        test_logits=np.zeros((1, 3)),
        test_labels=np.array([0]),
    )
    with pytest.raises(ValueError, match=r"cal_labels must lie in \[0, 3\)"):
        load_logits_file(tmp_path / "range.npz")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "evil.p", "wb") as handle:
        pickle.dump(((Evil(), None), (None, None)), handle)
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle builtins.print"):
        load_logits_file(tmp_path / "evil.p")


def test_logits_standin_is_a_real_overconfident_classifier(standin_root: Path) -> None:
    from lightning_modules.metrics.calibration import calibration_report

    dm = LogitsDataModule(root=str(standin_root), synthetic=True, standin_size="tiny")
    dm.prepare_data()
    report = calibration_report(dm.tensors["test_logits"], dm.tensors["test_labels"])
    assert report["acc"] > 0.8 and report["ece"] > 0.02  # accurate, and miscalibrated enough to calibrate
    held = torch.bincount(dm.tensors["cal_labels"], minlength=10)
    assert held[0] > held[9]  # the calibration split inherits the long tail
