"""The attention-link regularizer: ViT and CNN maps are distributions, links are row-stochastic, the divergence
vanishes exactly on its target, the CNN stays frozen, gradients reach the links, the advanced module's fixed
links; plus the small-data CIFAR settings and CNN weights from a checkpoint trained in this framework."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules.classification.module import ImageClassifierModule
from lightning_modules.components.backbones import BackboneWeightsError, create_backbone
from lightning_modules.outputs.pictures import heatmap_picture
from lightning_modules.vit_aal.links_file import LinksFileError
from lightning_modules.vit_aal.module import ViTAALModule
from lightning_modules.vit_aal.networks import (
    AttentionLinks,
    AttentionViT,
    ChannelAttentionCNN,
    attention_divergence,
    distinct_top_sets,
    fixed_links,
    initial_link_weights,
    kmeans_channel_groups,
    link_correlation_loss,
)

SMALL = dict(
    num_classes=10,
    img_size=32,
    patch_size=8,
    depth=2,
    cnn_backbone="cifar_resnet20",
    cnn_layer="blocks.8",
    cnn_normalization="cifar",
    pretrained=False,
)


def test_vit_attention_is_timm_s_own_cls_row_renormalized_over_patches() -> None:
    torch.manual_seed(0)
    vit = AttentionViT("deit_tiny_patch16_224", num_classes=5, img_size=32, patch_size=8, depth=2).eval()
    image = torch.rand(3, 3, 32, 32)
    _, maps = vit(image, layers=[0, 1])
    assert maps.shape == (3, 2, 3, 16)  # B, layers, heads, 4x4 patches
    torch.testing.assert_close(maps.sum(dim=-1), torch.ones(3, 2, 3))
    # timm's unfused path computes the full attention matrix; its CLS row without the CLS column, renormalized
    full = []
    for block in vit.vit.blocks:
        block.attn.fused_attn = False
        block.attn.attn_drop.register_forward_hook(lambda m, i, o: full.append(i[0]))
    vit(image)
    for layer, attention in enumerate(full):
        row = attention[:, :, 0, 1:]
        torch.testing.assert_close(maps[:, layer], row / row.sum(-1, keepdim=True), atol=1e-5, rtol=1e-4)


def test_vit_without_layers_returns_no_maps_and_other_sizes_run() -> None:
    vit = AttentionViT("deit_tiny_patch16_224", num_classes=5, img_size=32, patch_size=8, depth=1)
    logits, maps = vit(torch.rand(2, 3, 48, 48))
    assert logits.shape == (2, 5) and maps is None
    with pytest.raises(ValueError, match="not a multiple of the patch size 8"):
        vit.grid(torch.rand(1, 3, 30, 30))


def test_cnn_maps_are_distributions_on_the_patch_grid_and_silent_channels_uniform() -> None:
    cnn = ChannelAttentionCNN("cifar_resnet20", "blocks.5", pretrained=False, normalization="cifar")
    maps = cnn(torch.rand(2, 3, 32, 32), grid=(4, 4))
    assert maps.shape == (2, cnn.num_channels, 16) and cnn.num_channels == 32
    torch.testing.assert_close(maps.sum(dim=-1), torch.ones(2, 32))
    assert (maps >= 0).all()
    zero = torch.zeros(1, 2, 4, 4)
    cnn.features = lambda image, keys=None: zero  # a layer with no positive activation anywhere
    torch.testing.assert_close(cnn(torch.rand(1, 3, 32, 32), grid=(4, 4)), torch.full((1, 2, 16), 1 / 16))
    with pytest.raises(ValueError, match="cnn_layer='layer3' is not a sub-module of cifar_resnet20"):
        ChannelAttentionCNN("cifar_resnet20", "layer3", pretrained=False, normalization="cifar")


def test_links_rows_sum_to_one_and_targets_are_distributions() -> None:
    links = AttentionLinks(num_layers=2, num_heads=3, num_channels=5)
    torch.nn.init.normal_(links.weight)
    probabilities = links.probabilities()
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 3))
    maps = torch.rand(4, 5, 9).softmax(-1)
    targets = links(maps)
    assert targets.shape == (4, 2, 3, 9)
    torch.testing.assert_close(targets.sum(-1), torch.ones(4, 2, 3))
    # zero-initialized links start every head at the mean map
    fresh = AttentionLinks(1, 2, 5)(maps)
    torch.testing.assert_close(fresh[:, 0, 1], maps.mean(dim=1))


def test_divergence_is_zero_on_the_target_and_positive_elsewhere() -> None:
    target = torch.rand(2, 3, 4, 16).softmax(-1)
    other = torch.rand(2, 3, 4, 16).softmax(-1)
    for kind in ("kl", "reverse_kl", "mse"):
        assert attention_divergence(target, target.clone(), kind) == 0
        assert attention_divergence(target, other, kind) > 0
    # KL(T || M) by hand for one pair of two-point maps
    t, m = torch.tensor([[0.25, 0.75]]), torch.tensor([[0.5, 0.5]])
    expected = 0.25 * np.log(0.5) + 0.75 * np.log(1.5)
    assert float(attention_divergence(t, m, "kl")) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="divergence must be kl, reverse_kl or mse"):
        attention_divergence(t, m, "js")


def test_fixed_links_keep_top_k_per_head() -> None:
    probabilities = torch.tensor([[[0.1, 0.5, 0.3, 0.1], [0.4, 0.1, 0.1, 0.4]]])
    fixed = fixed_links(probabilities, top_k=2)
    torch.testing.assert_close(fixed[0, 0], torch.tensor([0.0, 0.625, 0.375, 0.0]))
    torch.testing.assert_close(fixed[0, 1], torch.tensor([0.5, 0.0, 0.0, 0.5]))
    uniform = fixed_links(torch.tensor([[[0.1, 0.6, 0.3]]]), top_k=2, weights="uniform")
    torch.testing.assert_close(uniform[0, 0], torch.tensor([0.0, 0.5, 0.5]))
    links = AttentionLinks(1, 2, 4, fixed=fixed)
    assert links.weight is None and links.channels.tolist() == [0, 1, 2, 3]
    only = AttentionLinks(
        1, 2, 4, fixed=fixed_links(torch.tensor([[[0.1, 0.5, 0.3, 0.1], [0.1, 0.2, 0.1, 0.6]]]), 1)
    )
    assert only.channels.tolist() == [1, 3]  # the channels the advanced module computes
    assert not list(links.parameters())


def _batch(size: int = 4) -> dict[str, torch.Tensor]:
    return {"image": torch.rand(size, 3, 32, 32), "label": torch.arange(size) % 10}


def test_a_training_step_moves_vit_and_links_never_the_cnn() -> None:
    torch.manual_seed(0)
    module = ViTAALModule(**SMALL)
    module.train()
    assert not module.cnn.cnn.training  # frozen network stays in eval mode
    cnn_before = {k: v.clone() for k, v in module.cnn.state_dict().items()}
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached
    loss = module.training_step(_batch(), 0)
    loss.backward()
    assert module.links.weight.grad is not None and module.links.weight.grad.abs().sum() > 0
    assert module.vit.vit.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in module.cnn.parameters())
    for key, value in module.cnn.state_dict().items():  # batch-norm statistics too
        assert torch.equal(value, cnn_before[key]), key


def test_lambda_zero_or_no_cnn_is_the_plain_vit() -> None:
    plain = ViTAALModule(**{**SMALL, "cnn_backbone": None})
    assert plain.cnn is None and plain.links is None and not plain.regularized
    off = ViTAALModule(**{**SMALL, "regularizer_weight": 0.0})
    assert off.links is not None and not off.regularized
    with pytest.raises(ValueError, match="links_path needs a CNN"):
        ViTAALModule(**{**SMALL, "cnn_backbone": None, "links_path": "links.pt"})


def test_advanced_module_reads_exported_links(tmp_path: Path) -> None:
    torch.manual_seed(0)
    first = ViTAALModule(**SMALL)
    torch.nn.init.normal_(first.links.weight, std=3.0)
    path = first.export_links(tmp_path / "run" / "version_0")
    rows = (path.parent / "links.csv").read_text().splitlines()
    assert rows[0] == "layer,head,rank,channel,probability" and len(rows) == 1 + 2 * 3 * 3
    advanced = ViTAALModule(
        **SMALL, links_path=str(tmp_path / "run"), top_k=2
    )  # a run folder: newest links.pt
    probabilities = advanced.links.probabilities()
    assert ((probabilities > 0).sum(-1) == 2).all()
    expected = first.links.probabilities().detach().topk(2, dim=-1).indices.sort(-1).values
    assert torch.equal((probabilities > 0).nonzero()[:, -1].reshape(2, 3, 2), expected)
    assert advanced.links.weight is None  # fixed: nothing to train
    assert set(advanced.links.channels.tolist()) == set(expected.flatten().tolist())
    advanced.log = advanced.log_dict = lambda *a, **k: None  # no trainer attached
    assert torch.isfinite(advanced.training_step(_batch(), 0))
    with pytest.raises(
        LinksFileError, match="holds links of shape \\(2, 3, 64\\); this model needs \\(2, 3, 32\\)"
    ):
        ViTAALModule(**{**SMALL, "depth": 2, "cnn_layer": "blocks.5"}, links_path=str(path))
    with pytest.raises(LinksFileError, match="no links.pt there"):
        ViTAALModule(**SMALL, links_path=str(tmp_path / "nothing"))


def test_links_heat_map_pixels() -> None:
    matrix = torch.zeros(2, 3)
    matrix[1, 2] = 1.0
    picture = heatmap_picture(matrix, cell=4)
    assert picture.shape == (3, 8, 12)
    torch.testing.assert_close(
        picture[:, 4:, 8:], torch.tensor([0.05, 0.15, 0.55])[:, None, None].expand(3, 4, 4)
    )
    assert (picture[:, :4, :] == 1).all() and (picture[:, 4:, :8] == 1).all()


def test_cnn_weights_from_a_checkpoint_trained_here(tmp_path: Path) -> None:
    classifier = ImageClassifierModule(backbone="cifar_resnet20", num_classes=10)
    torch.save({"state_dict": classifier.state_dict(), "epoch": 3}, tmp_path / "last.ckpt")
    cnn = create_backbone("cifar_resnet20", pretrained_path=str(tmp_path / "last.ckpt"))
    assert torch.equal(cnn.stem[0].weight, classifier.net.backbone.stem[0].weight)
    assert torch.equal(cnn.blocks[8].bn2.running_mean, classifier.net.backbone.blocks[8].bn2.running_mean)
    with pytest.raises(BackboneWeightsError, match="no prefix in this checkpoint holds all"):
        create_backbone("cifar_resnet32", pretrained_path=str(tmp_path / "last.ckpt"))


def test_small_data_settings_are_per_class_seeded_and_leave_validation_alone(standin_root: Path) -> None:
    from datamodules.cifar import CIFARDataModule

    def build(**options):
        data = CIFARDataModule(root=str(standin_root), synthetic=True, standin_size="tiny", **options)
        data.prepare_data()
        data.setup("fit")
        return data

    full = build()
    tenth = build(train_fraction=0.1)
    three = build(samples_per_class=3)
    full_labels = full.datasets["train"].labels
    assert np.array_equal(np.bincount(three.datasets["train"].labels), [3] * 10)
    expected = [max(1, int(0.1 * n)) for n in np.bincount(full_labels)]
    assert np.array_equal(np.bincount(tenth.datasets["train"].labels), expected)
    assert len(tenth.datasets["calibration"]) == len(full.datasets["calibration"])
    assert np.array_equal(build(train_fraction=0.1).datasets["train"].images, tenth.datasets["train"].images)
    assert not np.array_equal(
        build(train_fraction=0.1, seed=1).datasets["train"].images, tenth.datasets["train"].images
    )
    with pytest.raises(ValueError, match="train_fraction or samples_per_class, not both"):
        CIFARDataModule(train_fraction=0.5, samples_per_class=2)
    with pytest.raises(ValueError, match="train_fraction must be in \\(0, 1\\]"):
        CIFARDataModule(train_fraction=0.0)


def test_fit_writes_the_links_and_draws_them_in_tensorboard(run_cli) -> None:
    from tests.helpers import decode, read_events

    fit = run_cli(
        "fit", "--config", "configs/vit_aal_cifar100.yaml", "--model.init_args.link_init", "distinct"
    )
    run_dir = Path(fit.trainer.log_dir)
    saved = torch.load(run_dir / "links.pt", weights_only=True)
    module = fit.model
    torch.testing.assert_close(saved["probabilities"], module.links.probabilities().detach())
    assert saved["layers"] == list(range(12)) and (run_dir / "links.csv").is_file()
    events = read_events(run_dir)
    logged = decode(events.Images("pictures/links")[-1]).astype(np.float32) / 255.0
    expected = module.links_picture().permute(1, 2, 0).numpy()
    assert logged.shape == expected.shape == (12 * 3 * 8, min(64, module.cnn.num_channels) * 8, 3)
    assert np.abs(logged - expected).max() <= 1 / 255 + 1e-6
    scalars = events.Tags()["scalars"]
    assert {"train/link_loss", "train/ce", "val/link_loss", "val/acc", "val/distinct_top3_sets"} <= set(
        scalars
    )
    assert "val/distinct_top3_sets/layer11" in scalars
    assert {"pictures/target_last_layer_head0", "pictures/attention_last_layer_head0"} <= set(
        events.Tags()["images"]
    )
    # the measure before the first step, beside its value after training: a distinct start gives every head
    # (3 per layer) its own top-3 set
    assert events.Scalars("val/distinct_top3_sets_start")[-1].value == 3.0 == float(module.distinct_start)


def test_a_cached_upsampling_cnn_computes_each_image_s_map_once() -> None:
    """An ImageNet CNN on small images: resized for it (stride 16 at 64 px: 4 x 4), and with ``cache`` each key's
    features are computed once and then read back, equal to a fresh computation."""
    cnn = ChannelAttentionCNN("tf_efficientnet_lite0", 3, pretrained=False, input_size=64, cache=True)
    calls = []
    cnn.cnn.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    images = torch.rand(3, 3, 32, 32)
    first = cnn.features(images, ["a", "b", "c"])
    assert first.shape == (3, 112, 4, 4) and calls == [3]
    again = cnn.features(images[[2, 0]], ["c", "a"])  # cached: no CNN call
    assert calls == [3]
    torch.testing.assert_close(again, first[[2, 0]])
    cnn.features(images[:2], ["a", "d"])  # only the new one
    assert calls == [3, 1]
    torch.testing.assert_close(first, cnn.features(images))  # as computed without the cache


def test_distinct_starts_give_each_head_its_own_channel_group() -> None:
    weights = initial_link_weights((2, 3, 7), "distinct", scale=2.0)
    assert torch.equal(weights[0, 1], torch.tensor([0.0, 2, 0, 0, 2, 0, 0]))  # channels 1 and 4 (mod 3)
    assert torch.equal(weights[0], weights[1]) and (weights.sum(dim=1) == 2.0).all()  # each channel one head
    probabilities = (weights / 0.1).softmax(dim=-1)
    assert distinct_top_sets(probabilities, k=2) == [3, 3]
    assert distinct_top_sets(initial_link_weights((2, 3, 7), "zeros").softmax(-1), k=2) == [1, 1]
    assert initial_link_weights((1, 2, 5), "random").std() > 0
    with pytest.raises(ValueError, match="link_init must be zeros, random or distinct"):
        initial_link_weights((1, 2, 5), "ones")


def test_the_correlation_link_loss_ignores_a_uniform_head_and_never_reaches_the_vit() -> None:
    torch.manual_seed(0)
    weight = torch.zeros(1, 2, 4, requires_grad=True)
    maps = torch.rand(3, 4, 6).softmax(dim=-1)  # (B, C, P)
    target = torch.einsum("lhc,bcp->blhp", weight.softmax(-1), maps)
    attention = torch.rand(3, 1, 2, 6, requires_grad=True)
    attention_uniform = torch.full((3, 1, 2, 6), 1 / 6, requires_grad=True)
    link_correlation_loss(target, attention_uniform).backward(retain_graph=True)
    assert weight.grad.abs().max() == 0  # a head that attends uniformly: no pull on its links
    link_correlation_loss(target, attention.softmax(-1)).backward()
    assert weight.grad.abs().max() > 0 and attention.grad is None  # links move; the ViT gets nothing from it
    same = torch.rand(2, 1, 1, 6)
    assert float(link_correlation_loss(same, same)) == pytest.approx(0.0, abs=1e-6)


def test_the_kmeans_control_fixes_each_head_to_one_cluster_of_channels() -> None:
    torch.manual_seed(0)
    centers = torch.rand(3, 10)  # three kinds of channel maps, two channels each
    maps = torch.stack([centers[c % 3] + 0.01 * torch.rand(10) for c in range(6)])[None].expand(4, -1, -1)
    groups = kmeans_channel_groups(maps, groups=3)
    assert torch.allclose(groups.sum(dim=1), torch.ones(3))
    members = [set(row.nonzero().flatten().tolist()) for row in groups]
    assert sorted(map(sorted, members)) == [[0, 3], [1, 4], [2, 5]]


def test_a_control_run_clusters_once_and_keeps_its_groups_when_resumed(run_cli) -> None:
    config = ["--config", "configs/vit_aal_cifar100.yaml", "--model.init_args.link_source", "kmeans"]
    fit = run_cli("fit", *config)
    module = fit.model
    assert bool(module.groups_fitted) and module.links.weight is None
    fixed = module.links.fixed.clone()
    assert not torch.allclose(fixed, torch.full_like(fixed, fixed.mean()))  # no longer the placeholder
    resumed = run_cli("fit", *config, "--ckpt_path", "last", "--trainer.max_epochs", "2")
    torch.testing.assert_close(resumed.model.links.fixed, fixed)
    assert run_cli("fit", *config, "--model.init_args.link_objective", "correlation").trainer.global_step > 0
