"""Style Latent Flows: face-video layouts and clips, triplets, style latents, both stages' networks, video metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.base import DatasetNotFoundError
from datamodules.faceforensics import FaceVideoDataModule
from datamodules.standins.faceforensics import MANIPULATIONS
from datamodules.video_clips import TripletSampler, clip_indices, clip_starts
from lightning_modules.metrics.detection import GroupedBinaryMetrics
from lightning_modules.styleflow.latents import ensure_latents
from lightning_modules.styleflow.networks import (
    ContentBranch,
    LatentDropout,
    StyleAttention,
    StyleGRU,
    StyleHead,
    TemporalTransformer,
)
from lightning_modules.styleflow.style_encoders import (
    PSPEncoder,
    load_style_encoder,
)


def video_folder(root: Path, frames: int, size: int = 16) -> Path:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        Image.fromarray(np.full((size, size, 3), i * 7 % 255, np.uint8)).save(root / f"{i:04d}.png")
    return root


# ------------------------------------------------------------------------------------------------------ clips
def test_clip_policy_drops_short_videos_pads_medium_ones_and_cuts_long_ones() -> None:
    assert clip_starts(10, 32, 16) == []  # under min_frames: dropped
    assert clip_starts(20, 32, 16) == [0]  # one padded clip
    assert clip_starts(70, 32, 16) == [0, 32]  # non-overlapping, the 6-frame tail unused
    assert clip_starts(96, 32, 16, max_clips=2) == [0, 32]
    padded = clip_indices(0, 20, 32)
    assert len(padded) == 32 and list(padded[:20]) == list(range(20))
    assert list(padded[20:24]) == [18, 17, 16, 15]  # reflected back from the last frame
    assert list(clip_indices(0, 2, 8)) == [0, 1, 0, 1, 0, 1, 0, 1]  # shorter than the pad: reflected again
    assert list(clip_indices(32, 70, 32)) == list(range(32, 64))


def test_triplets_pair_same_labels_from_other_videos_and_resample_each_epoch() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    videos = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    sampler = TripletSampler(labels, videos, count=400, seed=3)
    first = list(sampler)
    assert len(first) == 400
    for anchor, positive, negative in first:
        assert labels[anchor] == labels[positive] != labels[negative]
        assert videos[anchor] != videos[positive]
    assert 0.4 < np.mean([labels[a] for a, _, _ in first]) < 0.6  # anchor class 50/50, not 5:3
    sampler.set_epoch(0)
    assert list(sampler) == first  # seeded by (seed, epoch)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert list(sampler) != list(sampler)  # without set_epoch (a DDP wrapper), each pass draws anew
    with pytest.raises(DatasetNotFoundError, match="one class is empty"):
        TripletSampler(np.zeros(4, int), np.arange(4), 2, 0)


# --------------------------------------------------------------------------------------------- layouts and data
@pytest.fixture(scope="module")
def ff_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ff")
    FaceVideoDataModule(root=str(root), synthetic=True, standin_size="tiny", inputs=["frames"]).prepare_data()
    return root


def test_standin_fakes_differ_from_their_target_in_time_not_in_layout(ff_root: Path) -> None:
    """Each fake keeps its original's background; its frame-to-frame change differs from the original's."""
    from datamodules.image_io import read_rgb

    base = ff_root / "faceforensics_standin_tiny" / "train"
    original = sorted((base / "original").iterdir())[0]
    clips = {"original": np.stack([read_rgb(p) for p in sorted(original.glob("*.png"))]).astype(np.float32)}
    for kind in MANIPULATIONS:
        fake = next((base / kind).glob(f"{original.name}_*"))
        clips[kind] = np.stack([read_rgb(p) for p in sorted(fake.glob("*.png"))]).astype(np.float32)
    corner = {k: v[:, :2, :2].mean() for k, v in clips.items()}
    assert max(abs(corner[k] - corner["original"]) for k in MANIPULATIONS) < 3  # same background
    face = slice(8, 24)
    change = {k: np.abs(np.diff(v[:, face, face], axis=0)).mean() for k, v in clips.items()}
    assert all(change[kind] > change["original"] for kind in MANIPULATIONS), change  # per-frame jitter


def test_held_out_manipulation_is_only_in_test_and_batches_have_the_documented_keys(ff_root: Path) -> None:
    dm = FaceVideoDataModule(
        root=str(ff_root),
        synthetic=True,
        standin_size="tiny",
        inputs=["frames"],
        held_out=["FaceSwap"],
        image_size=24,
        batch_size=4,
        num_workers=0,
        clip_len=16,
    )
    dm.prepare_data()
    dm.setup("fit")
    groups = {split: {v.group for v in dm.videos[split]} for split in ("train", "val", "test")}
    assert "FaceSwap" not in groups["train"] | groups["val"] and "FaceSwap" in groups["test"]
    assert dm.groups_for("val") == ["original", "Deepfakes", "Face2Face", "NeuralTextures"]
    assert dm.effective_seen_generators() == ["Deepfakes", "Face2Face", "NeuralTextures"]
    assert (
        len(dm.datasets["train"]) == 6 * 4 * 2
    )  # 6 people x (original + 3 fakes) x 2 clips of 16 in 36 frames
    batch = next(iter(dm.val_dataloader()))
    assert batch["frames"].shape == (4, 16, 3, 24, 24) and batch["video_index"].dtype == torch.long
    assert 0 <= batch["frames"].min() and batch["frames"].max() <= 1
    with pytest.raises(ValueError, match=r"held_out: \['Swapped'\] are not among"):
        FaceVideoDataModule(held_out=["Swapped"])


def test_official_split_lists_and_the_generic_layout(tmp_path: Path) -> None:
    ffpp = tmp_path / "ffpp"
    for name in ("000", "001", "002", "003"):
        video_folder(ffpp / "original" / name, 4)
    for name in ("000_001", "001_000", "002_003", "003_002"):
        video_folder(ffpp / "Deepfakes" / name, 4)
    (ffpp / "splits").mkdir()
    for split, pairs in {
        "train": [["000", "001"]],
        "val": [["002", "003"]],
        "test": [["002", "003"]],
    }.items():
        (ffpp / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    dm = FaceVideoDataModule(
        root=str(ffpp), manipulations=["Deepfakes"], inputs=["frames"], clip_len=4, min_frames=2
    )
    assert [v.folder.name for v in dm.find_videos("train")] == ["000", "001", "000_001", "001_000"]
    assert [v.label for v in dm.find_videos("val")] == [0, 0, 1, 1]

    generic = tmp_path / "celebdf"
    video_folder(generic / "test" / "real" / "a", 3)
    video_folder(generic / "test" / "fake" / "b", 3)
    dm = FaceVideoDataModule(root=str(generic), dataset="generic", inputs=["frames"])
    assert [(v.label, v.group) for v in dm.find_videos("test")] == [(0, "celebdf"), (1, "celebdf")]
    assert dm.real_group is None and dm.groups_for("test") == ["celebdf"]
    with pytest.raises(DatasetNotFoundError, match=r"celebdf/train/real does not exist.*synthetic true"):
        dm.find_videos("train")


def test_latents_are_extracted_once_per_encoder_and_missing_ones_are_a_clear_error(tmp_path: Path) -> None:
    from lightning_modules.styleflow.module import FaceAutoencoderModule, StyleGRUModule

    root = tmp_path / "ffpp"
    folders = [
        video_folder(root / "train" / kind / name, 5)
        for kind, name in (("original", "a"), ("Deepfakes", "b"))
    ]
    data = FaceVideoDataModule(
        root=str(root), inputs=["latents"], manipulations=["Deepfakes"], clip_len=4, min_frames=2
    )
    encoder_file = tmp_path / "ae.ckpt"
    module = FaceAutoencoderModule(image_size=16, width=4, num_layers=2, layer_dim=3)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, encoder_file)
    assert data.latent_dim is None  # nothing written yet: the model's encoder decides
    assert ensure_latents(data, encoder_file, batch_size=2, splits=("train",)) == 2
    latents = np.load(folders[0] / "latents.npy")
    assert latents.shape == (5, 6) and data.latent_dim == 6
    assert json.loads((folders[0] / "latents.json").read_text())["layers"] == 2
    assert ensure_latents(data, encoder_file, splits=("train",)) == 0  # resumes: nothing left to do
    (folders[1] / "latents.npy").unlink()
    assert ensure_latents(data, encoder_file, splits=("train",)) == 1
    with torch.no_grad():
        frames = torch.stack([torch.full((3, 16, 16), i * 7 / 255) for i in range(5)])
        expected = load_style_encoder(encoder_file)(frames).numpy()
    np.testing.assert_allclose(latents, expected, atol=2e-3, rtol=1e-2)  # float16 on disk
    # the model owns the step: its encoder gives the width, and without one the latents must be there
    assert (
        StyleGRUModule(
            style_encoder=str(encoder_file), clip_len=4, hidden=4, head_hidden=4
        ).gru.gru.input_size
        == 6
    )
    with pytest.raises(ValueError, match="no style latents to read: set model.init_args.style_encoder"):
        StyleGRUModule(latent_dim=None, clip_len=4, hidden=4, head_hidden=4)

    dm = FaceVideoDataModule(
        root=str(tmp_path / "none"), inputs=["latents"], manipulations=["Deepfakes"], clip_len=4, min_frames=2
    )
    (tmp_path / "none" / "train" / "Deepfakes").mkdir(parents=True)
    video_folder(tmp_path / "none" / "train" / "original" / "x", 4)
    with pytest.raises(
        DatasetNotFoundError, match=r"1 train videos have no latents.npy .*model.init_args.style_encoder"
    ):
        dm.setup("fit")


def test_psp_encoder_loads_a_psp_checkpoint_and_gives_18_by_512_codes(tmp_path: Path) -> None:
    encoder = PSPEncoder()
    state = {f"encoder.{k}": v.half() for k, v in encoder.state_dict().items() if k != "latent_avg"}
    state["decoder.style.1.weight"] = torch.zeros(1)  # a pSp checkpoint also holds the generator
    average = torch.randn(18, 512)
    torch.save(
        {"state_dict": state, "latent_avg": average, "opts": {"encoder_type": "GradualStyleEncoder"}},
        tmp_path / "psp_ffhq_encode.pt",
    )
    loaded = load_style_encoder(tmp_path / "psp_ffhq_encode.pt")
    assert isinstance(loaded, PSPEncoder) and torch.equal(loaded.latent_avg, average)
    with torch.no_grad():
        codes = loaded(torch.rand(1, 3, 64, 64))
    assert codes.shape == (1, 18 * 512) and torch.isfinite(codes).all()
    torch.save({"state_dict": {"decoder.w": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a pSp checkpoint"):
        load_style_encoder(tmp_path / "other.pt")


# ----------------------------------------------------------------------------------------------------- networks
def test_latent_dropout_shares_one_mask_over_batch_frames_and_both_halves() -> None:
    torch.manual_seed(0)
    dropout = LatentDropout(0.5).train()
    out = dropout(torch.ones(3, 5, 8))
    kept = out != 0
    assert (kept == kept[0:1, 0:1]).all()  # same mask for every sample and frame
    assert torch.equal(kept[0, 0, :4], kept[0, 0, 4:])  # d and d + D/2 together
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(dropout.eval()(torch.ones(2, 2, 8)), torch.ones(2, 2, 8))


def test_stage_one_shapes_and_the_step_count_check() -> None:
    gru = StyleGRU(input_dim=12, steps=7, hidden=5, layers=2)
    style = gru(torch.randn(3, 7, 12))
    assert style.shape == (3, 4 * 5)  # 2 layers x 2 directions final states
    assert StyleHead(20, 8)(style).shape == (3,)
    with pytest.raises(ValueError, match="built for 7 steps"):
        gru(torch.randn(3, 9, 12))


def test_style_attention_adds_exactly_nothing_at_initialization_and_learns_to() -> None:
    attention = StyleAttention(8)
    content, style = torch.randn(2, 4, 8), torch.randn(2, 16, 8)
    assert torch.equal(attention(content, style), content)
    with torch.no_grad():
        attention.out.weight.fill_(0.1)
    assert not torch.equal(attention(content, style), content)


def test_stage_two_shapes_from_frames_to_one_logit_per_clip() -> None:
    branch = ContentBranch("r3d_18")
    tokens = branch(torch.rand(2, 16, 3, 32, 32))
    assert tokens.shape == (2, 2, 512)  # r3d_18: time / 8, space pooled
    small = ContentBranch("small3d", width=4)
    assert small(torch.rand(2, 16, 3, 32, 32)).shape == (2, 4, 32)
    transformer = TemporalTransformer(dim=16, max_tokens=8, depth=1, heads=2, mlp_dim=16)
    assert transformer(torch.randn(2, 4, 16)).shape == (2,)
    with pytest.raises(ValueError, match="content_backbone must be"):
        ContentBranch("resnet50")


def test_styleflow_with_an_untrained_attention_module_equals_content_only(tmp_path: Path) -> None:
    from lightning_modules.styleflow.module import StyleFlowModule, StyleGRUModule

    stage1 = StyleGRUModule(latent_dim=6, clip_len=8, hidden=4, head_hidden=4)
    torch.save(
        {"state_dict": stage1.state_dict(), "hyper_parameters": dict(stage1.hparams)}, tmp_path / "s1.ckpt"
    )
    sizes = dict(
        content_backbone="small3d", content_width=4, dim=8, style_tokens=2, depth=1, heads=2, mlp_dim=8
    )
    torch.manual_seed(0)
    with_style = StyleFlowModule(stylegru_path=str(tmp_path / "s1.ckpt"), **sizes).eval()
    torch.manual_seed(0)
    content_only = StyleFlowModule(use_style=False, **sizes).eval()
    content_only.load_state_dict(
        {k: v for k, v in with_style.state_dict().items() if k in content_only.state_dict()}
    )
    batch = {"frames": torch.rand(2, 8, 3, 32, 32), "deltas": torch.randn(2, 7, 6)}
    assert torch.equal(with_style.logits(batch), content_only.logits(batch))
    assert not any(p.requires_grad for p in with_style.style_gru.parameters())  # frozen by default
    with_style.train()
    assert not with_style.style_gru.training


# ----------------------------------------------------------------------------------------------- video metrics
def test_video_scores_average_clip_logits_and_manipulations_are_scored_against_originals() -> None:
    metrics = GroupedBinaryMetrics()
    metrics.set_groups(["original", "Deepfakes", "FaceSwap"], real_group="original")
    logit = torch.tensor([-2.0, -1.0, 3.0, -1.0, 4.0, 0.5, 0.5])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 0])
    groups = ["original", "original", "Deepfakes", "Deepfakes", "FaceSwap", "original", "original"]
    videos = torch.tensor([0, 0, 1, 1, 2, 3, 3])
    metrics.update(torch.sigmoid(logit), labels, groups, videos)
    results = metrics.compute()
    # videos: 0 real (mean logit -1.5), 1 fake (1.0), 2 fake (4.0), 3 real (0.5)
    assert results[None]["auc"] == pytest.approx(1.0)
    assert results[None]["acc"] == pytest.approx(3 / 4)  # video 3 (p = 0.62) is called fake
    assert "original" not in results
    assert results["Deepfakes"]["auc"] == pytest.approx(1.0) and results["FaceSwap"]["real_acc"] == 0.5


def test_a_clip_repeated_by_ddp_padding_counts_once_in_its_videos_mean() -> None:
    """The distributed sampler pads the last batch with repeated samples; with ``samples`` (dataset indices)
    the metric drops the repeats, so video 1's score stays σ(mean(3, -1)) instead of leaning to the repeat."""
    logit = torch.tensor([-2.0, 3.0, -1.0, -0.5])
    labels, videos, samples = (
        torch.tensor([0, 1, 1, 0]),
        torch.tensor([0, 1, 1, 2]),
        torch.tensor([0, 1, 2, 3]),
    )
    once, twice = GroupedBinaryMetrics(), GroupedBinaryMetrics()
    once.update(torch.sigmoid(logit), labels, None, videos, samples)
    repeated = torch.tensor(
        [2, 2, 2]
    )  # the clip with logit -1 padded in three more times (another rank's share)
    twice.update(torch.sigmoid(logit), labels, None, videos, samples)
    twice.update(torch.sigmoid(logit[repeated]), labels[repeated], None, videos[repeated], samples[repeated])
    assert once.compute() == twice.compute()
    blind = GroupedBinaryMetrics()  # without sample indices the repeats pull video 1 down
    blind.update(torch.sigmoid(logit), labels, None, videos)
    blind.update(torch.sigmoid(logit[repeated]), labels[repeated], None, videos[repeated])
    assert once.compute()[None]["acc"] == pytest.approx(1.0) and blind.compute()[None]["acc"] < 1.0


def test_pictures_show_a_clip_of_each_class_and_the_autoencoders_reconstructions() -> None:
    from lightning_modules.styleflow.module import FaceAutoencoderModule, StyleFlowModule

    frames = torch.rand(3, 10, 3, 16, 16)
    module = StyleFlowModule(
        use_style=False, content_backbone="small3d", content_width=4, dim=8, depth=1, heads=2, mlp_dim=8
    )
    clips = module.pictures({"frames": frames, "label": torch.tensor([0, 0, 1])})["clips"]
    assert torch.equal(
        clips, torch.cat([frames[0, :8], frames[2, :8]])
    )  # a real clip's frames, then a fake's
    autoencoder = FaceAutoencoderModule(image_size=16, width=4, num_layers=2, layer_dim=3).eval()
    picture = autoencoder.pictures({"frames": frames})["reconstruction"]
    assert picture.shape == (16, 3, 16, 16)
    assert torch.equal(picture[:8], frames[0, :8])  # inputs on top, reconstructions below
    assert 0 <= picture[8:].min() and picture[8:].max() <= 1


def test_the_gru_initial_state_starts_as_the_official_code_s() -> None:
    torch.manual_seed(0)
    normal = StyleGRU(6, steps=7, hidden=64, layers=2).initial_state
    assert normal.shape == (4, 1, 64) and 0.8 < float(normal.std()) < 1.2  # N(0, 1)
    assert float(StyleGRU(6, steps=7, hidden=64, initial_state="zeros").initial_state.abs().max()) == 0.0


def test_stage_one_loss_is_bce_on_the_triplet_plus_the_margin_hinge(monkeypatch) -> None:
    """The loss the official code trains StyleGRU with, written out: BCE of anchor / positive (the anchor's label)
    and negative (the other label), plus mean(max(0, ||E_a - E_p|| - ||E_a - E_n|| + margin))."""
    from lightning_modules.styleflow.module import StyleGRUModule

    torch.manual_seed(0)
    module = StyleGRUModule(latent_dim=6, clip_len=5, hidden=4, layers=1, head_hidden=8, margin=0.7).eval()
    monkeypatch.setattr(module, "log_dict", lambda *a, **k: None)
    batch = {k: torch.randn(3, 4, 6) for k in ("anchor", "positive", "negative")}
    batch["label"] = torch.tensor([1, 0, 1])
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        styles = {k: module.gru(batch[k]) for k in ("anchor", "positive", "negative")}
        y = batch["label"].float()
        bce = [
            -(t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z)))
            for z, t in (
                (module.head(styles["anchor"]), y),
                (module.head(styles["positive"]), y),
                (module.head(styles["negative"]), 1 - y),
            )
        ]
        near = (styles["anchor"] - styles["positive"]).norm(dim=1)
        far = (styles["anchor"] - styles["negative"]).norm(dim=1)
        hinge = torch.clamp(near - far + 0.7, min=0).mean()
    assert float(loss) == pytest.approx(float(torch.cat(bce).mean() + hinge), rel=1e-5)
