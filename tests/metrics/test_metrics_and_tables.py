"""Grouped detection metrics against hand-computed values, and the result table's rows and files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from lightning_modules.metrics.detection import GroupedBinaryMetrics, binary_scores
from lightning_modules.outputs.tables import read_result_table, summary_rows, write_result_table


def test_binary_scores_hand_case() -> None:
    probs = torch.tensor([0.1, 0.4, 0.35, 0.8])
    labels = torch.tensor([0, 0, 1, 1])
    scores = binary_scores(probs, labels)
    assert scores["acc"] == pytest.approx(0.75)  # 0.35 is a fake called real
    assert scores["real_acc"] == 1.0 and scores["fake_acc"] == 0.5
    # ranking: 0.8(f) 0.4(r) 0.35(f) 0.1(r) -> AP = (1/1 + 2/3) / 2; AUC = 3 of 4 pairs ordered
    assert scores["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["auc"] == pytest.approx(0.75)


def test_threshold_is_strict_like_sigma_above_half() -> None:
    scores = binary_scores(torch.tensor([0.5, 0.5]), torch.tensor([0, 1]))
    assert scores["real_acc"] == 1.0 and scores["fake_acc"] == 0.0 and scores["acc"] == 0.5


def test_grouped_metrics_split_by_group_and_pool() -> None:
    metric = GroupedBinaryMetrics(["a", "b"])
    metric.update(torch.tensor([0.9, 0.2]), torch.tensor([1, 0]), ["a", "a"])
    metric.update(torch.tensor([0.6, 0.7, 0.1]), torch.tensor([0, 1, 1]), ["b", "b", "b"])
    results = metric.compute()
    assert results["a"]["acc"] == 1.0 and results["a"]["ap"] == 1.0
    assert results["b"]["acc"] == pytest.approx(1 / 3)
    assert results[None]["acc"] == pytest.approx(3 / 5)
    with pytest.raises(KeyError, match="not among"):
        metric.update(torch.tensor([0.5]), torch.tensor([1]), ["c"])


def test_without_a_group_list_only_pooled_metrics() -> None:
    metric = GroupedBinaryMetrics()
    metric.update(torch.tensor([0.9, 0.2]), torch.tensor([1, 0]), ["x", "y"])
    assert list(metric.compute()) == [None]


def test_group_with_one_class_gives_nan_ap() -> None:
    metric = GroupedBinaryMetrics(["only_fakes"])
    metric.update(torch.tensor([0.9, 0.3]), torch.tensor([1, 1]), ["only_fakes"] * 2)
    result = metric.compute()["only_fakes"]
    assert math.isnan(result["ap"]) and math.isnan(result["real_acc"]) and result["fake_acc"] == 0.5


def test_summary_rows_means_and_seen_split(tmp_path: Path) -> None:
    per_group = {
        None: {"acc": 0.7, "ap": 0.8},
        "progan": {"acc": 1.0, "ap": 1.0},
        "stylegan": {"acc": 0.6, "ap": 0.9},
        "biggan": {"acc": 0.5, "ap": 0.5},
    }
    rows = summary_rows(per_group, ["acc", "ap"], seen=["progan"])
    by_name = {row["group"]: row for row in rows}
    assert by_name["mean"]["acc"] == pytest.approx(70.0)
    assert by_name["mean (seen)"]["acc"] == pytest.approx(100.0)
    assert by_name["mean (unseen)"]["ap"] == pytest.approx(70.0)
    assert by_name["all images"]["acc"] == pytest.approx(70.0)
    assert by_name["stylegan"]["seen"] == "no" and by_name["progan"]["seen"] == "yes"
    markdown = write_result_table(rows, ["acc", "ap"], tmp_path, title="t")
    assert "| mean (unseen) | no | 55.0 | 70.0 |" in markdown
    assert (tmp_path / "results.md").read_text() == markdown
    back = read_result_table(tmp_path / "results.csv")
    assert [r["group"] for r in back] == [r["group"] for r in rows]
    assert back[1]["ap"] == pytest.approx(90.0)


def test_control_groups_are_reported_but_left_out_of_the_means() -> None:
    per_group = {
        "progan": {"acc": 1.0, "ap": 1.0},
        "stylegan": {"acc": 0.6, "ap": 0.9},
        "blurred_real": {"acc": 0.1, "ap": 0.2},
    }
    rows = summary_rows(per_group, ["acc", "ap"], seen=["progan"], controls=["blurred_real"])
    by_name = {row["group"]: row for row in rows}
    assert by_name["blurred_real"]["seen"] == "control" and by_name["blurred_real"]["ap"] == pytest.approx(
        20.0
    )
    assert by_name["mean"]["acc"] == pytest.approx(80.0)
    assert by_name["mean (unseen)"]["ap"] == pytest.approx(90.0)


def test_auroc_of_unbounded_scores_keeps_their_order() -> None:
    """torchmetrics squashes scores outside [0, 1] with a sigmoid, tying every score above ~17 in float32;
    the shared auroc() ranks them first, so large anomaly scores keep their order."""
    from torchmetrics.functional.classification import binary_auroc

    from lightning_modules.metrics.detection import auroc

    scores = torch.tensor([100.0, 200.0, 300.0, 400.0])
    labels = torch.tensor([0, 0, 1, 1])
    assert float(binary_auroc(scores, labels)) == 0.5  # the trap
    assert auroc(scores, labels) == 1.0 and auroc(-scores, labels) == 0.0
    assert auroc(torch.tensor([1.0, 1.0, 1.0, 2.0]), labels) == 0.75  # ties stay ties (half credit)
    probs = torch.rand(50)
    target = (torch.rand(50) > 0.5).long()
    assert auroc(probs, target) == pytest.approx(float(binary_auroc(probs, target)))


def test_npmi_over_lemmatized_texts_keeps_out_of_vocabulary_words_in_the_windows() -> None:
    """gensim keeps words outside the dictionary as placeholders in its 10-word windows: two vocabulary words
    eleven words apart never share a window in the lemmatized text, but do once the others are deleted."""
    from gensim.corpora import Dictionary

    from lightning_modules.metrics.topics import npmi_per_topic

    filler = [f"filler{i}" for i in range(10)]
    lemmatized = [["apple", *filler, "pear"], ["apple", "plum"], ["pear", "plum"], ["kiwi", "fig"]]
    vocabulary = {"apple", "pear", "plum", "kiwi", "fig"}
    reduced = [[w for w in text if w in vocabulary] for text in lemmatized]
    dictionary = Dictionary([sorted(vocabulary)])
    topic = [["apple", "pear"]]
    (full,), (short,) = (
        npmi_per_topic(topic, lemmatized, dictionary, 2),
        npmi_per_topic(topic, reduced, dictionary, 2),
    )
    assert full < -0.9 and short > full + 0.5  # never together in a window vs together
