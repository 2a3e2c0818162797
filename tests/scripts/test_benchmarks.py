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


def test_peer_timing_protocol_alternates_drops_the_warm_up_and_calls_faster_only_without_overlap(
    monkeypatch,
) -> None:
    """One protocol for every peer row: untimed warm-ups, alternating rounds, the median with its spread, and a
    "faster" verdict only when the spreads do not overlap (a 5 % rule once called one noisy run a win)."""
    from benchmarks import timing
    from benchmarks.timing import Timings, alternate, compare, time_sides

    order: list[str] = []
    results = alternate(
        {"a": lambda: order.append("a") or len(order), "b": lambda: order.append("b") or len(order)}, 3, 1
    )
    assert order == ["a", "b", "b", "a", "a", "b", "b", "a"]  # round 0 is the warm-up, then the order flips
    assert results == {"a": [4, 5, 8], "b": [3, 6, 7]}
    slow, fast = Timings((3.0, 3.2, 3.1, 3.5, 3.3)), Timings((1.0, 1.1, 0.9, 1.2, 1.0))
    assert (
        compare(fast, slow) == "ours 3.2x faster"
        and compare(slow, fast, "anomalib") == "anomalib 3.2x faster"
    )
    overlapping = Timings((0.95, 3.0, 1.0, 1.0, 1.0))  # one slow run: its median alone would say 3x
    assert compare(overlapping, slow) == "within noise" and compare(slow, overlapping) == "within noise"
    assert slow.cell() == "3.20 (3.00-3.50)" and fast.rate_cell(64) == "64 (53-71)"
    calls: list[int] = []
    timed = time_sides({"x": lambda: calls.append(1)}, runs=5)
    assert len(timed["x"].seconds) == 5 and len(calls) > 5  # a quick call is repeated within each run
    monkeypatch.setattr(timing, "MIN_RUN_SECONDS", 0.0)  # every call slow enough to be a run of its own
    calls.clear()
    time_sides({"x": lambda: calls.append(1)}, runs=5)
    assert len(calls) == 1 + 5  # the sizing call is the warm-up: no second untimed call
    with pytest.raises(ValueError, match="positive"):
        Timings(())


def test_peer_benchmark_refuses_fewer_than_five_runs_and_says_what_was_not_run(tmp_path: Path) -> None:
    from benchmarks import peers

    with pytest.raises(SystemExit):
        peers.main(["--runs", "3", "--out", str(tmp_path / "x.md")])
    out = tmp_path / "peers.md"
    markdown = peers.main(["--out", str(out), "--sctl", str(tmp_path / "absent")])
    assert out.read_text() == markdown and "median (min-max) of 5 timed runs per side" in markdown
    for option in ("dcutmix", "sctl", "styleflow", "tvqvae"):
        assert f"not run: no checkout given (`--{option} <folder>`)" in markdown


def test_patchcore_sides_that_did_unequal_work_are_refused() -> None:
    from benchmarks.patchcore_peer import coreset_projection_dim
    from benchmarks.patchcore_row import UnequalWorkError, check_equal_work

    assert (
        coreset_projection_dim(40 * 256) == 228
    )  # what anomalib 2.7's coreset chose for 40 images at 128 px
    same = {"images": 40, "bank": 1024, "projection_dim": 228}
    check_equal_work({"ours": same, "anomalib": dict(same)}, 256, 0.1)
    with pytest.raises(UnequalWorkError, match="bank"):  # the drop-last bug: 32 of 40 images in the bank
        check_equal_work({"ours": {**same, "bank": 819}, "anomalib": same}, 256, 0.1)
    with pytest.raises(UnequalWorkError, match="projection_dim"):
        check_equal_work({"ours": {**same, "projection_dim": 128}, "anomalib": same}, 256, 0.1)
    with pytest.raises(UnequalWorkError, match="expected ceil"):
        check_equal_work({"ours": {**same, "bank": 1000}, "anomalib": {**same, "bank": 1000}}, 256, 0.1)


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


def test_patchcore_peer_row_runs_ours_for_real_beside_given_venvs(tmp_path: Path) -> None:
    """The PatchCore row: our side fits and tests through cli.py on the stand-in with the packaged ImageNet Lite0
    weights (a real run, in its own process) and must do the peers' work (40 images, 1,024 of 10,240 patches,
    228 projected dims); the anomalib and official sides are whatever python their venvs hold, here one that
    prints a made-up result of that work, so the row's plumbing and wording are checked without installing
    either."""
    from benchmarks import patchcore_row

    result = {
        "fit_seconds": 1000.0,
        "peak_rss_mib": 2048,
        "peak_rise_mib": {
            "start-up": 500,
            "training batches": 1000,
            "coreset": -0.3,  # float noise of a peak that did not rise: printed 0, not -0
            "validation batches": 548,
        },
        "images": 40,
        "bank": 1024,
        "projection_dim": 228,
        "image_auroc": 50.0,
        "pixel_auroc": 60.0,
    }
    for venv in ("venv", "official_venv"):
        fake = tmp_path / venv / "bin" / "python"
        fake.parent.mkdir(parents=True)
        fake.write_text(f"#!/bin/sh\necho 'PEER_RESULT {json.dumps(result)}'\n")
        fake.chmod(0o755)
    rows = patchcore_row.patchcore_rows(
        tmp_path / "venv", tmp_path, tmp_path / "official_venv", runs=1, warmups=0
    )
    fit_line = next(i for i, line in enumerate(rows) if line.startswith("Fit: "))
    table, phases = (
        {line.split(" | ")[0].lstrip("| "): line for line in part if line.startswith("| ")}
        for part in (rows[:fit_line], rows[fit_line:])
    )
    assert (
        table["anomalib 2.7.0"]
        == "| anomalib 2.7.0 | 1,000.0 (1,000.0-1,000.0) | 2048 | 1,024 | 50.0 | 60.0 |"
    )
    assert table["official unknown"].startswith("| official unknown | 1,000.0 ")  # no git checkout here
    assert phases["anomalib 2.7.0"] == "| anomalib 2.7.0 | 500 | 1,000 | 0 | 548 | — |"  # fit end: not given
    rises = [float(v.replace(",", "")) for v in phases["ours"].strip("| ").split(" | ")[1:]]
    # every phase read; torch alone is > 100 MiB
    assert len(rises) == 5 and rises[0] > 100 and min(rises) >= 0, phases["ours"]
    cells = table["ours"].strip("| ").split(" | ")[1:]
    fit = float(cells[0].split(" ")[0])
    rss, bank, image, pixel = (float(v.replace(",", "")) for v in cells[1:])
    assert 0 < fit < 1000 and rss > 100 and bank == 1024  # ceil(10 % of 40 images x 16 x 16 patches)
    assert (
        sum(rises) <= rss + 1
    )  # the rises add up to the peak at the fit's end, read before the one after it
    assert 50 <= image <= 100 and 50 <= pixel <= 100, table["ours"]
    assert "tf_efficientnet_lite0" in rows[0] and "blocks.2 + blocks.4" in rows[0] and "228 dims" in rows[0]
    assert (
        rows[fit_line].startswith("Fit: beside anomalib 2.7.0, ours ")
        and "beside official unknown" in rows[fit_line]
    )


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
