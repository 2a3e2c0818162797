"""The bad-input suite: each broken input gives a one-line error naming the file, key or value (exit status 1,
no traceback) or a counted skip, through the command line as a user meets it.

Unit-level detail for the same cases lives beside each reader (test_forensynths, test_cifar_and_logits,
test_mtofnet). Text documents have no reader yet (TVQ-VAE is not built); their cases join this file with it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import logging
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cli
from datamodules.archives import UnsafeArchiveError, safe_extract
from datamodules.cifar import CIFARDataModule
from tests.conftest import CONFIGS

SMOKE = str(CONFIGS / "smoke.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``python cli.py ARGS`` in-process: (exit status, stderr)."""
    capsys.readouterr()
    try:
        status = cli.run_from_command_line(list(args))
    except SystemExit as exit_info:  # the argument parser's own errors
        status = int(exit_info.code or 0)
    return status, capsys.readouterr().err


def one_line_error(status: int, stderr: str, *fragments: str) -> str:
    assert status != 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-4000:]
    last = stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, f"{fragment!r} not in the last line: {last}"
    return last


@pytest.fixture
def forensynths(standin_root: Path, tmp_path: Path):
    """A CNNDetection-layout copy of the tiny stand-in, and the arguments that train BiHPF on it."""
    root = tmp_path / "cnndetection"
    shutil.copytree(standin_root / "forensynths_standin_tiny", root)
    args = [
        "fit",
        "--config",
        str(CONFIGS / "bihpf.yaml"),
        "--config",
        SMOKE,
        "--data.init_args.root",
        str(root),
        "--data.init_args.synthetic",
        "false",
        "--model.init_args.pretrained",
        "false",
        "--data.init_args.classes",
        "[cat, motorcycle, person, rocket]",
        "--runs_dir",
        str(tmp_path / "runs"),
    ]
    return root, args


def first_image(folder: Path) -> Path:
    return sorted(folder.glob("*.png"))[0]


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_undecodable_images_fail_naming_the_file_or_are_skipped_and_counted(
    damage: str, forensynths, capsys, caplog
) -> None:
    root, args = forensynths
    victim = first_image(root / "train" / "cat" / "1_fake")
    data = victim.read_bytes()
    victim.write_bytes(b"this is not a PNG" if damage == "corrupt" else data[: len(data) // 2])
    # every training image in one batch, so the damaged one is read within the smoke run's batches
    whole = ["--data.init_args.batch_size", "64", "--trainer.limit_train_batches", "1"]

    last = one_line_error(*run(capsys, *args, *whole, "--data.init_args.bad_files", "error"), str(victim))
    assert "bad_files: skip" in last

    with caplog.at_level(logging.WARNING, logger="datamodules"):
        status, stderr = run(capsys, *args, *whole)
    assert status == 0, stderr[-3000:]
    assert "skipped unreadable images: 1 in train" in caplog.text


def test_grayscale_rgba_16_bit_and_tiny_images_train(forensynths, capsys) -> None:
    root, args = forensynths
    folder = root / "train" / "cat" / "0_real"
    Image.fromarray(np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)).save(folder / "gray.png")
    Image.fromarray(np.full((48, 48, 4), 120, np.uint8)).save(folder / "rgba.png")
    Image.fromarray(np.arange(48 * 48, dtype=np.uint16).reshape(48, 48) * 20).save(folder / "deep.png")
    Image.fromarray(np.full((9, 13, 3), 60, np.uint8)).save(
        folder / "tiny.png"
    )  # smaller than the 32 px crop
    status, stderr = run(
        capsys,
        *args,
        "--data.init_args.bad_files",
        "error",
        "--data.init_args.batch_size",
        "64",
        "--trainer.limit_train_batches",
        "1",
    )
    assert status == 0, stderr[-3000:]
    # what training read: three channels every time, gray stays gray, 16 bits are scaled (not clipped to white)
    from datamodules.forensynths import ForenSynthsDataModule

    data = ForenSynthsDataModule(root=str(root), image_size=32, num_workers=0, bad_files="error")
    data.setup("fit")
    dataset = data.datasets["train"]
    sample = {
        Path(r.path).name: dataset[i]["image"]
        for i, r in enumerate(dataset.records)
        if r.path.parent == folder
    }
    for name in ("gray.png", "rgba.png", "deep.png", "tiny.png"):
        assert sample[name].shape == (3, 32, 32), name
    assert torch.equal(sample["gray.png"][0], sample["gray.png"][1]) and torch.equal(
        sample["gray.png"][1], sample["gray.png"][2]
    )
    assert torch.allclose(
        sample["rgba.png"], torch.full_like(sample["rgba.png"], 120 / 255), atol=2 / 255
    )  # alpha dropped
    deep = sample["deep.png"]
    assert torch.equal(deep[0], deep[2]) and 0.05 < float(deep.mean()) < 0.95 and float(deep.std()) > 0


def sideways_copy(upright: np.ndarray, path: Path) -> None:
    """``upright`` stored as a camera stores a portrait shot: pixels turned a quarter, EXIF orientation 6."""
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored.save(path, exif=exif)


def test_an_exif_rotated_photo_is_read_upright(tmp_path: Path) -> None:
    from datamodules.depth_io import read_depth
    from datamodules.image_io import read_rgb

    upright = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)  # landscape, asymmetric
    sideways_copy(upright, tmp_path / "phone.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "phone.png")).shape, (30, 20, 3))  # as stored
    assert np.array_equal(read_rgb(tmp_path / "phone.png"), upright)
    depth = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30)).transpose(
        Image.Transpose.ROTATE_90
    )
    exif = Image.Exif()
    exif[0x0112] = 6
    depth.save(tmp_path / "depth.png", exif=exif)
    assert np.array_equal(read_depth(tmp_path / "depth.png"), np.arange(600).reshape(20, 30))


def test_an_empty_class_folder_and_a_missing_split_name_the_folder(forensynths, capsys) -> None:
    root, args = forensynths
    for image in (root / "train" / "cat" / "1_fake").glob("*.png"):
        image.unlink()
    one_line_error(*run(capsys, *args), "train/cat/1_fake holds no images")
    shutil.rmtree(root / "train" / "cat" / "1_fake")
    one_line_error(*run(capsys, *args), "train/cat must hold both 0_real/ and 1_fake/")
    shutil.rmtree(root / "train")
    one_line_error(*run(capsys, *args), "train does not exist", "Get CNNDetection")


def test_a_label_out_of_range_names_the_file_and_the_range(tmp_path: Path, capsys) -> None:
    path = tmp_path / "logits.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        cal_logits=rng.normal(size=(20, 10)),
        cal_labels=np.arange(20) % 10,
        test_logits=rng.normal(size=(8, 10)),
        test_labels=np.array([0, 1, 2, 3, 4, 5, 6, 12]),
    )
    args = [
        "fit",
        "--config",
        str(CONFIGS / "cls_logits.yaml"),
        "--data.init_args.path",
        str(path),
        "--data.init_args.synthetic",
        "false",
        "--trainer.accelerator",
        "cpu",
        "--runs_dir",
        str(tmp_path),
    ]
    one_line_error(*run(capsys, *args), str(path), "test_labels must lie in [0, 10)", "0..12")


def test_unknown_config_key_and_wrong_class_path_name_them(capsys) -> None:
    base = ["fit", "--config", str(CONFIGS / "bihpf.yaml"), "--print_config"]
    status, stderr = run(capsys, *base, "--model.init_args.frequency_gian", "2")
    assert status != 0 and "frequency_gian" in stderr and "Traceback" not in stderr
    status, stderr = run(capsys, *base, "--model", "lightning_modules.nope.Missing")
    assert status != 0 and "lightning_modules.nope.Missing" in stderr and "Traceback" not in stderr


def test_a_checkpoint_of_another_method_or_a_broken_one_is_refused(run_cli, tmp_path: Path, capsys) -> None:
    classifier = run_cli(
        "fit", "--config", str(CONFIGS / "cls_cifar10.yaml"), "--model.init_args.backbone", "cifar_resnet20"
    )
    checkpoint = Path(classifier.trainer.log_dir) / "checkpoints" / "last.ckpt"
    bihpf = [
        "test",
        "--config",
        str(CONFIGS / "bihpf.yaml"),
        "--config",
        SMOKE,
        "--runs_dir",
        str(tmp_path / "r"),
        "--model.init_args.pretrained",
        "false",
    ]
    one_line_error(
        *run(capsys, *bihpf, "--ckpt_path", str(checkpoint)),
        "ImageClassifierModule",
        "the config builds lightning_modules.bihpf.module.BiHPFModule",
    )

    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(checkpoint.resolve().read_bytes()[:1000])
    one_line_error(*run(capsys, *bihpf, "--ckpt_path", str(broken)), str(broken), "not a loadable checkpoint")


def make_tar(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            archive.addfile(info)
    return path


@pytest.mark.parametrize(
    "members, link",
    [
        ({"../escape.txt": b"x"}, None),
        ({"/tmp/absolute.txt": b"x"}, None),
        ({"ok.txt": b"x"}, ("out", "/etc")),
    ],
    ids=["parent", "absolute", "symlink-out"],
)
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path: Path, members, link) -> None:
    archive = make_tar(tmp_path / "evil.tar.gz", {"fine.txt": b"fine", **members}, link)
    target = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError, match="evil.tar.gz: member"):
        safe_extract(archive, target)
    assert not (tmp_path / "escape.txt").exists() and not any(target.iterdir())


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar_download_over_loopback_is_checked_and_unpacked_safely(
    standin_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real download path (URL, MD5, unpack, read), served from this machine instead of Toronto."""
    CIFARDataModule(root=str(standin_root), synthetic=True, standin_size="tiny").prepare_data()
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(standin_root / "cifar_standin_tiny" / "cifar-10-batches-py", arcname="cifar-10-batches-py")

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from torchvision.datasets import CIFAR10

        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz")
        monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
        folder = (
            standin_root / "cifar_standin_tiny" / "cifar-10-batches-py"
        )  # torchvision checks each file too
        for listing in ("train_list", "test_list"):
            monkeypatch.setattr(
                CIFAR10, listing, [[n, md5(folder / n)] for n, _ in getattr(CIFAR10, listing)]
            )
        monkeypatch.setitem(CIFAR10.meta, "md5", md5(folder / CIFAR10.meta["filename"]))
        data = CIFARDataModule(root=str(tmp_path / "cifar"), download=True, num_workers=0, image_size=32)
        data.prepare_data()
        data.setup("fit")
        assert len(data.datasets["train"]) > 0 and (tmp_path / "cifar" / "cifar-10-python.tar.gz").is_file()

        monkeypatch.setattr(CIFAR10, "tgz_md5", "0" * 32)  # a corrupted download is not used
        (tmp_path / "again").mkdir()
        with pytest.raises(FileNotFoundError, match="could not be downloaded"):
            CIFARDataModule(root=str(tmp_path / "again"), download=True).prepare_data()
    finally:
        server.shutdown()
    assert torch.is_tensor(data.datasets["train"][0]["image"])


@pytest.fixture
def rgbd(standin_root: Path, tmp_path: Path):
    """A copy of the tiny RGB-D stand-in as a user's own captures, and the arguments that train mToFNet on it."""
    from datamodules.rgbd_spoof import RGBDSpoofDataModule

    RGBDSpoofDataModule(root=str(standin_root), synthetic=True, standin_size="tiny").prepare_data()
    root = tmp_path / "captures"
    shutil.copytree(standin_root / "rgbd_spoof_standin_tiny", root)
    args = [
        "fit",
        "--config",
        str(CONFIGS / "mtofnet.yaml"),
        "--config",
        SMOKE,
        "--data.init_args.root",
        str(root),
        "--data.init_args.synthetic",
        "false",
        "--model.init_args.pretrained",
        "false",
        "--data.init_args.batch_size",
        "64",
        "--trainer.limit_train_batches",
        "1",
        "--runs_dir",
        str(tmp_path / "runs"),
    ]
    return root, args


def test_a_corrupt_depth_map_fails_naming_it_or_is_skipped_and_a_lone_rgb_is_counted(
    rgbd, capsys, caplog
) -> None:
    root, args = rgbd
    victim = sorted((root / "train" / "genuine" / "objects").glob("*_depth.png"))[0]
    victim.write_bytes(b"not a depth map")
    last = one_line_error(
        *run(capsys, *args, "--data.init_args.bad_files", "error"), str(victim), "cannot read depth"
    )
    assert "bad_files: skip" in last
    partner = sorted((root / "train" / "genuine" / "prints").glob("*_depth.*"))[0]
    partner.unlink()
    with caplog.at_level(logging.WARNING, logger="datamodules"):
        status, stderr = run(capsys, *args)
    assert status == 0, stderr[-3000:]
    assert "captures without their RGB or depth partner skipped" in caplog.text
    assert "1 in train (no partner)" in caplog.text and "1 in train" in caplog.text


def test_missing_capture_folders_say_what_layout_is_expected(rgbd, capsys) -> None:
    root, args = rgbd
    shutil.rmtree(root / "val")
    one_line_error(*run(capsys, *args), "has no val folder", "_rgb.png + <id>_depth.png")


def test_a_missing_cnn_checkpoint_or_links_file_is_named(run_cli, tmp_path: Path, capsys) -> None:
    base = [
        "fit",
        "--config",
        str(CONFIGS / "vit_aal_cifar100.yaml"),
        "--config",
        SMOKE,
        "--data.init_args.root",
        str(tmp_path / "data"),
        "--runs_dir",
        str(tmp_path / "runs"),
    ]
    one_line_error(
        *run(capsys, *base, "--model.init_args.pretrained_path", str(tmp_path / "cnn.ckpt")),
        "cnn.ckpt' is not a file",
    )
    one_line_error(
        *run(
            capsys,
            *base,
            "--model.init_args.pretrained",
            "false",
            "--model.init_args.links_path",
            str(tmp_path / "nowhere"),
        ),
        "no links.pt there",
    )


@pytest.fixture
def mvtec(standin_root: Path, tmp_path: Path):
    """A copy of the tiny MVTec-layout stand-in as a user's own data, and the arguments that fit PatchCore on it."""
    from datamodules.mvtec import MVTecDataModule

    MVTecDataModule(root=str(standin_root), synthetic=True, standin_size="tiny").prepare_data()
    root = tmp_path / "mvtec"
    shutil.copytree(standin_root / "mvtec_standin_tiny", root)
    args = [
        "fit",
        "--config",
        str(CONFIGS / "patchcore_mvtec.yaml"),
        "--config",
        SMOKE,
        "--data.init_args.root",
        str(root),
        "--data.init_args.synthetic",
        "false",
        "--model.init_args.pretrained",
        "false",
        "--data.init_args.category",
        "brick",
        "--runs_dir",
        str(tmp_path / "runs"),
    ]
    return root, args


def test_anomaly_data_errors_name_the_folder_file_or_category(mvtec, capsys) -> None:
    root, args = mvtec
    one_line_error(
        *run(capsys, *args, "--data.init_args.category", "bottle"),
        "no mvtec_ad category bottle",
        "mvtec-ad",
        "--data.init_args.synthetic true",
    )
    shutil.rmtree(root / "brick" / "ground_truth" / "scratch")
    one_line_error(*run(capsys, *args), "ground_truth/scratch does not exist")
    shutil.rmtree(root / "brick" / "test" / "scratch")
    victim = first_image(root / "brick" / "test" / "hole")
    victim.write_bytes(b"not a png")
    one_line_error(*run(capsys, *args, "--data.init_args.bad_files", "error"), str(victim), "cannot decode")
    status, stderr = run(capsys, *args, "--trainer.limit_val_batches", "1.0")
    assert status == 0, stderr[-3000:]
