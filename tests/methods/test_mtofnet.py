"""mToFNet and the RGB-D anti-spoofing data: depth files, partners, genuine-only training, the metrics at a
threshold set on genuine captures, and a trained model scoring a flat-depth recapture above a genuine pair."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.depth_io import normalize_depth, read_depth
from datamodules.image_io import BadImageError
from datamodules.rgbd_spoof import CaptureRecord, RGBDDataset, RGBDSpoofDataModule, find_captures
from lightning_modules.mtofnet.networks import MToFNet, agreement_loss
from lightning_modules.routines.spoof_detection import spoof_metrics, spoof_rows, threshold_at_bpcer


def _write_capture(folder: Path, capture: str, rgb: np.ndarray, depth: np.ndarray, npy: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(folder / f"{capture}_rgb.png")
    if npy:
        np.save(folder / f"{capture}_depth.npy", depth.astype(np.float32))
    else:
        Image.fromarray(depth.astype(np.uint16)).save(folder / f"{capture}_depth.png")


def test_depth_reads_16_bit_png_millimetres_and_float_npy(tmp_path: Path) -> None:
    depth = np.array([[0, 400], [1000, 65535]], dtype=np.uint16)
    Image.fromarray(depth).save(tmp_path / "d.png")
    np.save(tmp_path / "d.npy", depth.astype(np.float32) / 1000.0)  # metres
    assert np.array_equal(read_depth(tmp_path / "d.png"), depth.astype(np.float32))
    np.testing.assert_allclose(read_depth(tmp_path / "d.npy"), depth / 1000.0, rtol=1e-6)
    Image.new("RGB", (4, 4)).save(tmp_path / "color.png")
    with pytest.raises(BadImageError, match="color.png: cannot read depth .*not a depth map"):
        read_depth(tmp_path / "color.png")


def test_depth_normalization_clips_percentiles_and_keeps_holes_at_zero() -> None:
    depth = np.linspace(100, 200, 101, dtype=np.float32)
    depth[0] = 0  # no measurement
    depth[-1] = 10_000  # a flying pixel far beyond the 99th percentile
    out = normalize_depth(depth)
    assert out[0] == 0 and out.max() == pytest.approx(1.0) and out[1:].min() == pytest.approx(0.0)
    valid = depth[1:]
    lo, hi = np.percentile(valid, [1, 99])
    assert out[50] == pytest.approx((depth[50] - lo) / (hi - lo), rel=1e-5)
    assert not normalize_depth(np.zeros((3, 3))).any()


def test_missing_partner_is_a_counted_skip_and_a_coarse_depth_is_resized_with_a_warning(
    tmp_path: Path,
) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "train" / "genuine" / "phone"
    _write_capture(folder, "a", rgb, np.full((8, 8), 500))  # ToF is coarser
    _write_capture(folder, "b", rgb, np.full((16, 16), 500.0), npy=True)
    Image.fromarray(rgb).save(folder / "lonely_rgb.png")  # no depth
    records, unpaired = find_captures(tmp_path / "train")
    assert [r.rgb.name for r in records] == ["a_rgb.png", "b_rgb.png"] and [p.name for p in unpaired] == [
        "lonely_rgb.png"
    ]
    data = RGBDSpoofDataModule(root=str(tmp_path), image_size=16)
    data._records("train")
    assert data.skipped_files["train (no partner)"] == 1
    dataset = RGBDDataset(records, data.eval_transform())
    with pytest.warns(UserWarning, match="a_depth.png: depth 8x8 differs from the RGB's 16x16; resizing"):
        sample = dataset[0]
    assert sample["depth"].shape == (1, 16, 16) and sample["image"].shape == (3, 16, 16)


def test_genuine_only_never_yields_a_spoof(standin_root: Path) -> None:
    data = RGBDSpoofDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        image_size=32,
        batch_size=4,
        num_workers=0,
        genuine_only=True,
    )
    data.prepare_data()
    data.setup("fit")
    for loader in (data.train_dataloader(), data.val_dataloader()):
        assert all((batch["label"] == 0).all() for batch in loader)
    assert any((batch["label"] == 1).any() for batch in data.test_dataloader())
    assert data.unseen_displays() == ["curved_led", "imac_lcd", "iphone_11_pro"]
    both = RGBDSpoofDataModule(root=str(standin_root), synthetic=True, standin_size="tiny", image_size=32)
    both.setup("fit")
    assert any(r.label == 1 for r in both.datasets["train"].records)
    assert both.unseen_displays() == ["curved_led", "imac_lcd", "iphone_11_pro"]  # read from the folders


def test_threshold_and_metrics_on_a_hand_case() -> None:
    genuine = torch.arange(1, 101, dtype=torch.float32) / 100  # 0.01 .. 1.00
    threshold = threshold_at_bpcer(genuine, 0.05)
    assert (genuine > threshold).float().mean() == pytest.approx(0.05)
    scores = torch.tensor([0.1, 0.2, 0.3, 0.9, 0.4, 0.8, 0.95, 0.97])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    values = spoof_metrics(scores, labels, threshold=0.5)
    assert values["apcer"] == 0.25 and values["bpcer"] == 0.25 and values["acer"] == 0.25
    assert values["auc"] == pytest.approx(14 / 16)  # 14 of the 16 genuine-spoof pairs ranked right
    groups = ["cam", "cam", "cam", "cam", "old_tv", "new_tv", "new_tv", "new_tv"]
    rows = {r["group"]: r for r in spoof_rows(scores, labels, groups, 0.5, unseen=["new_tv"])}
    assert (
        rows["old_tv"]["apcer"] == 100.0 and rows["new_tv"]["apcer"] == 0.0 and rows["new_tv"]["seen"] == "no"
    )
    assert rows["mean unseen"]["acer"] == rows["new_tv"]["acer"] == pytest.approx(12.5)
    assert rows["new_tv"]["auc"] == pytest.approx(100 * 11 / 12)
    assert math.isnan(spoof_metrics(genuine, torch.zeros(100, dtype=torch.long), 0.5)["apcer"])


def test_infonce_is_small_when_pairs_match_and_cosine_stopgrad_stops_the_target_gradient() -> None:
    matched = torch.nn.functional.normalize(torch.eye(4, 8), dim=-1)
    shuffled = matched[[1, 2, 3, 0]]
    assert agreement_loss(matched, matched) < agreement_loss(matched, shuffled)
    target = matched.clone().requires_grad_(True)
    agreement_loss(shuffled.clone().requires_grad_(True), target, "cosine_stopgrad").backward()
    assert target.grad is None


def test_a_trained_model_scores_a_flat_depth_recapture_above_the_genuine_pair() -> None:
    """Genuine: a textured object whose depth follows its shading; spoof: the same picture over a flat,
    tilted screen. Trained on genuine pairs only."""
    torch.manual_seed(0)
    size = 32
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")

    def genuine_pair(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        centers = torch.rand(n, 2, 1, 1) - 0.5
        radius = 0.4 + 0.4 * torch.rand(n, 1, 1)
        bump = torch.exp(-((xx - centers[:, 0]) ** 2 + (yy - centers[:, 1]) ** 2) / radius**2)  # a dome
        texture = 0.5 + 0.1 * torch.sin(12 * xx + 6 * torch.rand(n, 1, 1)) * torch.cos(9 * yy)
        rgb = (texture * (0.3 + 0.7 * bump))[:, None].expand(-1, 3, -1, -1) * torch.tensor([1.0, 0.8, 0.6])[
            :, None, None
        ]
        return rgb.clamp(0, 1), bump[:, None]

    net = MToFNet("resnet10t", dim=32, hidden=64, pretrained=False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for _ in range(80):
        rgb, depth = genuine_pair(16)
        loss = agreement_loss(*net(rgb, depth), temperature=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    rgb, depth = genuine_pair(32)
    flat = 0.5 + 0.2 * xx.expand(32, 1, size, size)  # the screen: a tilted plane under the same picture
    with torch.no_grad():
        genuine_scores, spoof_scores = net.score(rgb, depth), net.score(rgb, flat)
    assert genuine_scores.mean() < spoof_scores.mean()
    assert (genuine_scores < spoof_scores).float().mean() > 0.7
    assert net.score_map(rgb[:2], depth[:2]).shape == (2, 1, 1, 1)


def test_fit_draws_rgb_depth_and_score_maps_and_test_writes_the_display_table(run_cli) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torchvision.utils import make_grid

    from tests.helpers import read_events

    def read_events_file(path: Path) -> EventAccumulator:
        events = EventAccumulator(str(path), size_guidance={"images": 0})
        events.Reload()
        return events

    from tests.helpers import decode

    fit = run_cli("fit", "--config", "configs/mtofnet.yaml")
    run_dir = Path(fit.trainer.log_dir)
    events = read_events(run_dir)
    assert {"pictures/rgb", "pictures/depth", "pictures/score_map"} <= set(events.Tags()["images"])
    batch = next(iter(fit.datamodule.val_dataloader()))
    expected = (
        make_grid(batch["depth"][:16].expand(-1, 3, -1, -1), nrow=8, padding=2).permute(1, 2, 0).numpy()
    )
    logged = decode(events.Images("pictures/depth")[-1]).astype(np.float32) / 255.0
    assert logged.shape == expected.shape and np.abs(logged - expected).max() <= 1 / 255 + 1e-6
    assert not math.isnan(float(fit.model.threshold))
    run_cli("test", "--config", "configs/mtofnet.yaml", "--ckpt_path", "last")
    tags = set().union(
        *(set(read_events_file(f).Tags()["images"]) for f in run_dir.glob("events.out.tfevents.*"))
    )
    assert {"test_pictures/rgb", "test_pictures/depth", "test_pictures/score_map"} <= tags
    table = (run_dir / "results.md").read_text()
    for row in ("| all |", "| curved_led |", "| mean unseen |"):
        assert row in table


def test_capture_record_is_hashable_for_sets() -> None:
    record = CaptureRecord(Path("a_rgb.png"), Path("a_depth.png"), 0, "phone")
    assert len({record, record}) == 1


def test_bpcer_per_kind_of_genuine_capture_shows_the_flat_prints_apart() -> None:
    scores = torch.tensor(
        [0.1, 0.2, 0.9, 0.8, 0.95, 0.3]
    )  # two objects, two prints (one rejected), two spoofs
    labels = torch.tensor([0, 0, 0, 0, 1, 1])
    groups = ["objects", "objects", "prints", "prints", "ipad", "ipad"]
    rows = {r["group"]: r for r in spoof_rows(scores, labels, groups, threshold=0.85, unseen=[])}
    assert (
        rows["genuine: prints"]["bpcer"] == pytest.approx(50.0) and rows["genuine: objects"]["bpcer"] == 0.0
    )
    assert math.isnan(rows["genuine: prints"]["acer"]) and rows["all"]["bpcer"] == pytest.approx(25.0)
    one_source = spoof_rows(scores, labels, ["objects"] * 4 + ["ipad"] * 2, threshold=0.85, unseen=[])
    assert not any(str(r["group"]).startswith("genuine: ") for r in one_source)
