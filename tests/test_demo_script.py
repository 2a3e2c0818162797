"""`make demo`'s script runs every ForenSynths method and joins their tables (here shortened by smoke.yaml)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import CONFIGS, REPO


def test_demo_script_compares_every_method(tmp_path: Path, standin_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    sys.path.insert(0, str(REPO / "scripts"))
    import demo_forensynths

    smoke = ["--config", str(CONFIGS / "smoke.yaml"), "--data.init_args.root", str(standin_root)]
    markdown = demo_forensynths.main([*smoke, "--runs_dir", str(tmp_path)])
    header = markdown.splitlines()[2]
    for column in ("cnndetection acc", "bihpf ap", "frepgan acc", "frepgan C alone acc", "fingerprintnet ap"):
        assert column in header
    assert (tmp_path / "demo_forensynths.md").read_text() == markdown
    assert (tmp_path / "demo_frepgan" / "version_0" / "results_unperturbed.csv").is_file()
