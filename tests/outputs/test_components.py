"""What stood in for what: the components line that opens every result table, and how it is worked out."""

from __future__ import annotations

from pathlib import Path

from lightning_modules.outputs.tables import Component, components_line, read_result_table, write_result_table
from lightning_modules.routines.base import EvaluationRoutine


class Detector(EvaluationRoutine):
    def __init__(
        self, backbone: str = "resnet50", pretrained: bool = True, pretrained_path: str | None = None
    ):
        super().__init__()
        self.save_hyperparameters()


class FromScratch(Detector):
    def __init__(
        self, backbone: str = "cifar_resnet20", pretrained: bool = False, pretrained_path: str | None = None
    ):
        super().__init__(backbone, pretrained, pretrained_path)


def test_the_line_leads_with_the_stand_ins() -> None:
    assert (
        components_line([Component("a"), Component("b", True), Component("c")]) == "STAND-INS: b. Also: a; c"
    )
    assert components_line([Component("a"), Component("c")]) == "Components: a; c"


def test_weights_are_a_stand_in_only_where_the_protocol_is_pretrained() -> None:
    assert Detector(pretrained=False).components() == [
        Component(
            "backbone resnet50 randomly initialized (the protocol starts from pretrained weights)", True
        )
    ]
    assert Detector(pretrained=True).components() == [
        Component("backbone resnet50 with the hub's pretrained weights")
    ]
    assert Detector(pretrained_path="w.pth").components() == [
        Component("backbone resnet50 with weights from w.pth")
    ]
    assert FromScratch().components() == [Component("backbone cifar_resnet20 randomly initialized")]


def test_tables_carry_the_line_first_and_still_read_back(tmp_path: Path) -> None:
    rows = [{"group": "all", "seen": "", "acc": 50.0}]
    markdown = write_result_table(rows, ["acc"], tmp_path, "t", components=[Component("data: x", True)])
    assert markdown.splitlines()[0] == "_STAND-INS: data: x_"
    assert (tmp_path / "results_components.txt").read_text() == "STAND-INS: data: x\n"
    import pandas

    table = pandas.read_csv(tmp_path / "results.csv")  # a plain CSV: no options needed
    assert list(table.columns) == ["group", "seen", "acc"] and table["acc"].tolist() == [50.0]
    assert read_result_table(tmp_path / "results.csv") == [{"group": "all", "seen": "", "acc": 50.0}]
