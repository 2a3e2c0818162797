"""The benchmark code runs (its numbers are read by people from benchmarks/results.md, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.input_pipeline import compare
from benchmarks.peak_memory import peak_memory
from tests.conftest import CONFIGS


def test_input_pipeline_comparison_reads_the_same_kind_of_images(standin_root: Path) -> None:
    ours, reference, count = compare(
        standin_root, image_size=32, load_size=40, batch_size=8, workers=0, standin_size="tiny"
    )
    assert ours > 0 and reference > 0 and count == 48


def test_peak_memory_of_a_smoke_fit_is_the_child_s_own_not_its_parent_s(
    standin_root: Path, tmp_path: Path
) -> None:
    """The parent first touches 3 GiB, far more than a smoke fit needs: a child that reported ``ru_maxrss``
    (kept across exec) would show at least that; its own high-water mark is well below."""
    import numpy as np

    from benchmarks.process_memory import peak_rss_mib

    ballast = np.ones(3 << 30, dtype=np.uint8)  # written, so every page is resident
    parent = peak_rss_mib()
    del ballast
    peak = peak_memory(CONFIGS / "cnndetection.yaml", standin_root, tmp_path)
    assert 200 < peak["rss_mib"] < parent - 1024, (peak, parent)
    assert peak["cuda_mib"] is None


def test_gpu_check_parses_and_its_throughput_probe_runs_on_cpu() -> None:
    import subprocess

    from scripts.gpu_throughput import main

    subprocess.run(["bash", "-n", str(CONFIGS.parent / "scripts" / "gpu_check.sh")], check=True)
    line = main(
        [
            "--device",
            "cpu",
            "--backbone",
            "resnet18",
            "--image-size",
            "32",
            "--batch-size",
            "2",
            "--steps",
            "1",
        ]
    )
    assert "float32" in line and "bf16-mixed + channels-last" in line


def test_config_sweep_reports_runs_failures_and_skips_with_their_reason(
    standin_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """scripts/gpu_configs.py on CPU: a config that runs (peak memory read), one whose precision is wrong (failed,
    the error in the note, the sweep goes on), and where the text stack is missing a config that needs it and one
    that reads its run (skipped, each saying why)."""
    import scripts.gpu_configs as sweep

    monkeypatch.setattr(sweep, "missing_modules", lambda names=sweep.TEXT_STACK: ["gensim"])
    out = tmp_path / "sweep"
    outcomes = sweep.main(
        [
            "--configs",
            "cls_logits",
            "patchcore_mvtec_tgi",
            "--precision",
            "32-true",
            "64-nonsense",
            "--steps",
            "1",
            "--jobs",
            "2",
            "--accelerator",
            "cpu",
            "--root",
            str(standin_root),
            "--out",
            str(out),
            "--extra",
            "--config",
            str(CONFIGS / "smoke.yaml"),
        ]
    )
    found = {(o.config, o.precision): o for o in outcomes}
    assert found["cls_logits", "32-true"].result == "ok" and found["cls_logits", "32-true"].rss_mib > 100
    assert (
        found["cls_logits", "64-nonsense"].result == "failed"
        and "64-nonsense" in found["cls_logits", "64-nonsense"].note
    )
    assert (
        found["tgi_ad_generate", "32-true"].result == "skipped"
        and "gensim" in found["tgi_ad_generate", "32-true"].note
    )
    assert found["patchcore_mvtec_tgi", "32-true"].note == "needs tgi_ad_generate, which did not run"
    table = (out / "gpu_configs.md").read_text()
    assert table.count("\n| ") == 1 + len(outcomes) and "| cls_logits | 32-true | ok |" in table


def test_peer_benchmark_says_which_side_is_faster_and_what_was_not_run(tmp_path: Path) -> None:
    from benchmarks import peers

    assert peers.faster(1.0, 3.2) == "ours 3.2x faster" and peers.faster(1.4, 1.0) == "official 1.4x faster"
    assert peers.faster(1.0, 1.04) == peers.faster(1.04, 1.0) == "the same within 5 %"
    calls = []
    assert peers.best_time(lambda: calls.append(1), repeats=2) >= 0 and len(calls) == 3  # warm-up + 2
    out = tmp_path / "peers.md"
    markdown = peers.main(["--out", str(out), "--sctl", str(tmp_path / "absent")])
    assert out.read_text() == markdown
    for option in ("dcutmix", "sctl", "styleflow", "tvqvae"):
        assert f"not run: no checkout given (`--{option} <folder>`)" in markdown


def test_patchcore_peer_peak_memory_is_the_child_s_own() -> None:
    """A side's peak RSS is its own process's, not its parent's: Linux keeps ``ru_maxrss`` across ``exec``, which
    once gave both sides the parent's peak. The child here imports nothing heavy; the parent holds torch."""
    import resource
    import subprocess
    import sys

    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    code = "from benchmarks.patchcore_peer import peak_rss_mib; print(peak_rss_mib())"
    child = float(
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert 1 < child < 100 < parent, (child, parent)


def test_patchcore_peer_row_runs_ours_for_real_beside_a_given_venv(tmp_path: Path) -> None:
    """The PatchCore row: our side fits and tests through cli.py on the stand-in (a real run, in its own process);
    the anomalib side is whatever python the venv holds, here one that prints a made-up result, so the row's
    plumbing and wording are checked without installing anomalib; the warm-up run is left out of the row."""
    from benchmarks import peers

    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    result = {
        "fit_seconds": 1000.0,
        "peak_rss_mib": 2048,
        "peak_rise_mib": {"start-up": 500, "training batches": 1000, "coreset": 0, "validation batches": 548},
        "bank": 123,
        "image_auroc": 50.0,
        "pixel_auroc": 60.0,
    }
    warm = {**result, "fit_seconds": 5.0}  # the untimed first run, made faster so that keeping it would show
    calls = tmp_path / "calls"
    fake.write_text(
        f"#!/bin/sh\nif [ -f {calls} ]; then echo 'PEER_RESULT {json.dumps(result)}'; "
        f"else touch {calls}; echo 'PEER_RESULT {json.dumps(warm)}'; fi\n"
    )
    fake.chmod(0o755)
    rows = peers.patchcore_rows(tmp_path / "venv", repeats=1, warmups=1)
    fit_line = next(i for i, line in enumerate(rows) if line.startswith("Fit: "))
    table, phases = (
        {line.split(" | ")[0].lstrip("| "): line for line in part if line.startswith("| ")}
        for part in (rows[:fit_line], rows[fit_line:])
    )
    assert table["anomalib 2.7.0"] == "| anomalib 2.7.0 | 1000.0 | 2048 | 123 | 50.0 | 60.0 |"
    assert phases["anomalib 2.7.0"] == "| anomalib 2.7.0 | 500 | 1,000 | 0 | 548 | — |"  # fit end: not given
    rises = [float(v.replace(",", "")) for v in phases["ours"].strip("| ").split(" | ")[1:]]
    # every phase read; torch alone is > 100 MiB
    assert len(rises) == 5 and rises[0] > 100 and min(rises) >= 0, phases["ours"]
    cells = table["ours"].strip("| ").split(" | ")[1:]
    fit, rss, bank, image, pixel = (float(v.replace(",", "")) for v in cells)
    assert 0 < fit < 1000 and rss > 100 and bank > 0  # 40 training images of 16 x 16 patches, 10 % kept
    # the rises add up to the peak at the fit's end, read before the one after it
    assert sum(rises) <= rss + 1
    assert 50 <= image <= 100 and 50 <= pixel <= 100, table["ours"]
    assert rows[fit_line].startswith("Fit: ours ") and rows[fit_line].endswith("x faster.")


def test_gpu_pipeline_times_both_sides_of_each_row_on_cpu(standin_root: Path, tmp_path: Path) -> None:
    """benchmarks/gpu_pipeline.py at toy sizes on CPU (compiled with the eager backend): the files are written in
    the real layouts, each row is timed end to end and model only, and the block lands in the output file."""
    from benchmarks.gpu_pipeline import Throughput, main

    work = tmp_path / "work"
    work.mkdir()
    (work / "standins").symlink_to(standin_root)
    out = tmp_path / "gpu_cpu.md"
    out.write_text("# GPU check\n\nkept\n")
    markdown = main(
        [
            "--device", "cpu", "--work", str(work), "--out", str(out), "--workers", "1",
            "--backbone", "resnet18", "--precision", "32-true", "--image_size", "32", "--load_size", "40",
            "--batch_size", "4", "--images", "16", "--warmup", "1", "--steps", "2",
            "--compile_backend", "eager", "--standin_size", "tiny", "--mvtec_side", "48",
            "--mvtec_train", "6", "--mvtec_test", "12", "--mvtec_batch_size", "4", "--mvtec_warmup", "1",
            "--category", "brick",
        ]
    )  # fmt: skip
    rows = [
        line.split("|")[1:-1] for line in markdown.splitlines() if line.startswith(("| BiHPF", "| PatchCore"))
    ]
    assert [r[1].strip() for r in rows] == [
        "32-true + channels-last",
        "32-true + channels-last + torch.compile",
        "32-true + channels-last",
    ]
    for row in rows:
        end_to_end, model_only, ratio = (float(v) for v in row[2:5])
        assert end_to_end > 0 and model_only > 0 and ratio > 0
        assert row[5].strip() == ("yes" if ratio >= 0.9 else "no")
    jpegs = sorted((work / "forensynths_jpeg_16_40" / "train").rglob("*.jpg"))
    assert len(jpegs) == 16 and Image.open(jpegs[0]).size == (40, 40)
    masks = list((work / "mvtec_6_12_48" / "brick" / "ground_truth").rglob("*_mask.png"))
    assert masks and all(Image.open(m).size == (48, 48) for m in masks)
    assert (work / "trainer" / "results.md").is_file()  # PatchCore's table stays in the work folder
    text = out.read_text()
    assert "kept" in text and "<!-- gpu:pipeline -->" in text and "End to end" in text
    timer = Throughput(warmup=3)
    with pytest.raises(RuntimeError, match="nothing was timed"):
        _ = timer.images_per_second
