"""The second contract: what a model may ask its data (``split_info`` and a few protocols), answered by every
layout, so a renamed attribute fails here instead of dropping a column from a results table."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest

from datamodules.batch import (
    KeywordExpansion,
    NormalImages,
    SplitInfo,
    TopicCorpus,
    TrainingImages,
    data_as,
    protocol_members,
)
from datamodules.faceforensics import FaceVideoDataModule
from datamodules.forensynths import ForenSynthsDataModule
from datamodules.mnist import MNISTDataModule
from datamodules.mvtec import MVTecDataModule
from datamodules.rgbd_spoof import RGBDSpoofDataModule
from datamodules.standins.forensynths import BLURRED_REAL, SEEN_FAMILY
from lightning_modules.routines.base import EvaluationRoutine

TINY = {"synthetic": True, "standin_size": "tiny", "num_workers": 0, "image_size": 32}


def ready(datamodule: L.LightningDataModule, stage: str = "fit") -> L.LightningDataModule:
    datamodule.prepare_data()
    datamodule.setup(stage)
    return datamodule


def test_split_info_is_frozen_and_its_defaults_say_nothing() -> None:
    info = SplitInfo()
    assert info.groups == () and info.seen is None and info.real_group is None and info.per_clip
    with pytest.raises(FrozenInstanceError):
        info.groups = ("a",)  # type: ignore[misc]


def test_forensynths_test_split_names_seen_generators_and_controls(standin_root: Path) -> None:
    data = ready(ForenSynthsDataModule(root=str(standin_root), **TINY), "test")
    test, val = data.split_info("test"), data.split_info("val")
    assert test.groups == tuple(data.groups_for("test")) and BLURRED_REAL in test.groups
    assert test.seen == (SEEN_FAMILY,) and test.controls == (BLURRED_REAL,)
    assert val.seen is None and val.controls == ()  # seen / unseen is about test generators
    assert test.image_size == 32 and test.components[0][1] is True  # the stand-in says so
    assert data.split_info("predict").groups == ()


def test_face_videos_name_the_real_group_and_count_each_videos_clips(tmp_path: Path) -> None:
    data = ready(FaceVideoDataModule(root=str(tmp_path), inputs=["frames"], per_clip=False, **TINY), "test")
    test = data.split_info("test")
    assert test.real_group == "original" and test.groups[0] == "original"
    assert test.seen == tuple(m for m in data.manipulations if m not in data.held_out)
    predict = data.split_info("predict")
    clips = data.datasets["test"].clips
    assert not predict.per_clip and sum(n for _, n in predict.videos) == len(clips)
    assert [folder for folder, _ in predict.videos] == [str(v.folder) for v in data.datasets["test"].videos]


def test_rgbd_test_split_names_its_unseen_displays(standin_root: Path) -> None:
    data = ready(RGBDSpoofDataModule(root=str(standin_root), **TINY))
    assert data.split_info("test").unseen == ("curved_led", "imac_lcd", "iphone_11_pro")
    assert data.split_info("val").unseen == ()


def test_anomaly_data_titles_its_table_and_answers_the_anomaly_asks(standin_root: Path) -> None:
    data = ready(MVTecDataModule(root=str(standin_root), category="brick", shots=2, **TINY))
    info = data.split_info("test")
    assert info.title == "mvtec_ad/brick, 2-shot" and info.category == "brick"
    assert info.groups[0] == "good"
    for protocol in (TrainingImages, NormalImages, KeywordExpansion):
        assert data_as(data, protocol, "test") is data


def test_classification_data_names_its_classes(standin_root: Path) -> None:
    data = ready(MNISTDataModule(root=str(standin_root), **TINY))
    assert data.split_info("train").class_names == tuple(data.class_names) and len(data.class_names) == 10


def test_a_missing_ask_is_one_line_naming_who_asks_and_what_is_missing(standin_root: Path) -> None:
    data = MNISTDataModule(root=str(standin_root), **TINY)
    with pytest.raises(TypeError) as error:
        data_as(data, TopicCorpus, "TVQVAEModule")
    message = str(error.value)
    assert "\n" not in message and message.startswith("TVQVAEModule needs a datamodule with dictionary")
    assert "TopicCorpus" in message and "MNISTDataModule" in message
    assert "id2word" in protocol_members(TopicCorpus) and "texts" in protocol_members(TopicCorpus)


def test_a_routine_reads_its_data_through_split_info_only(standin_root: Path) -> None:
    """Without a datamodule the defaults; with one that cannot answer, a one-line error naming it."""

    class Plain(L.LightningDataModule):
        pass

    routine = EvaluationRoutine()
    assert routine.split_info("test") == SplitInfo()
    routine._trainer = SimpleNamespace(datamodule=Plain())  # what a trainer's datamodule looks like to it
    with pytest.raises(
        TypeError, match=r"^EvaluationRoutine needs a datamodule with split_info \(DescribesSplits\)"
    ):
        routine.split_info("test")
    routine._trainer = SimpleNamespace(datamodule=ready(MNISTDataModule(root=str(standin_root), **TINY)))
    assert len(routine.split_info("train").class_names) == 10
