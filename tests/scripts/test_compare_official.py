"""The pieces of scripts/compare_official.py that run without an official checkout: loading only the named
definitions of a script, the README blocks its tables go into, and the one-line error for a wrong folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import compare_official  # noqa: E402
from official_parity.loading import load_definitions, load_module  # noqa: E402

from benchmarks.readme_blocks import read_block, replace_block  # noqa: E402


def test_only_the_named_definitions_of_a_script_run(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\nraise SystemExit('the module level parses arguments and trains')\n"
        "def share(x):\n    return SCALE * x\n"
        "def other():\n    return 0\n"
    )
    namespace = load_definitions(script, ["share"], {"SCALE": 3})
    assert namespace["share"](2) == 6
    assert "other" not in namespace
    with pytest.raises(ValueError, match=r"train.py defines no \['missing'\]"):
        load_definitions(script, ["share", "missing"], {})


def test_a_file_the_checkout_lacks_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="models/scaler.py: not in the official checkout"):
        load_module(tmp_path / "models" / "scaler.py", "absent_scaler")


def test_readme_blocks_are_replaced_in_place_or_appended(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- table -->\nold\n<!-- /table -->\n\nAfter.\n")
    replace_block(readme, "table", "| a |\n|---|\n| 1 |\n")
    assert readme.read_text() == "# Title\n\n<!-- table -->\n| a |\n|---|\n| 1 |\n<!-- /table -->\n\nAfter.\n"
    assert read_block(readme, "table") == "| a |\n|---|\n| 1 |"
    replace_block(readme, "new", "x")
    assert readme.read_text().endswith("After.\n\n<!-- new -->\nx\n<!-- /new -->\n")
    assert read_block(readme, "absent") is None


def test_a_folder_that_is_not_the_checkout_is_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        compare_official.main(["--method", "sctl", "--official", str(tmp_path), "--out", str(tmp_path)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "lossfunction.py: not in the official checkout" in error and str(tmp_path) in error
    with pytest.raises(SystemExit):
        compare_official.main(["--method", "dcutmix", "--official", str(tmp_path / "absent")])
    assert "no such folder (clone clovaai/DCutMix there first)" in capsys.readouterr().err
