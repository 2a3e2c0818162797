"""scripts/export.py: the ONNX file of a detector, a calibrated classifier, an anomaly model (its memory bank
inside) and an RGB-D model gives, through onnxruntime, the scores predict wrote to predictions.csv."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime  # noqa: F401  (make install installs the export extra: a missing one fails, never skips)
import pytest

from tests.conftest import CONFIGS, REPO, smoke_argv
from tests.helpers import predictions_file

sys.path.insert(0, str(REPO / "scripts"))

import export  # noqa: E402

from lightning_modules.outputs.export import run_onnx  # noqa: E402

# config -> the predictions.csv column the exported output must reproduce, and that output's name
CASES = {
    "bihpf": ("fake_prob", "fake_prob"),
    "cls_cifar10": ("confidence", "probs"),
    "patchcore_mvtec": ("anomaly_score", "anomaly_score"),
    "mtofnet": ("spoof_score", "spoof_score"),
}
# the exporter traces every layer: ResNet-110's graph takes it ~20 s on 2 cores, ResNet-20's a fifth of that
FIT_ARGUMENTS = {"cls_cifar10": ["--model.init_args.backbone", "cifar_resnet20"]}


@pytest.mark.parametrize("name", list(CASES))
def test_the_onnx_file_gives_predict_s_scores(
    name: str, run_cli, fitted_runs, tmp_path: Path, standin_root: Path
) -> None:
    config = ["--config", str(CONFIGS / f"{name}.yaml")]
    run_dir = fitted_runs(CONFIGS / f"{name}.yaml", *FIT_ARGUMENTS.get(name, []))
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    inputs = FIT_ARGUMENTS.get(name, [])  # a configured value wins over the checkpoint's: given again
    if name == "bihpf":
        inputs = ["--data.init_args.predict_dir", str(standin_root / "forensynths_standin_tiny" / "test")]
    predict = run_cli("predict", *config, "--ckpt_path", str(checkpoint), *inputs)
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    argv = smoke_argv(["--config", str(CONFIGS / f"{name}.yaml"), *inputs], standin_root, tmp_path / "runs")
    out = export.main([*argv, "--ckpt_path", str(checkpoint), "--out", str(tmp_path / f"{name}.onnx")])
    model, _, batch = export.restored(argv, str(checkpoint))
    outputs = run_onnx(out, batch, model.export_input_keys)
    column, output = CASES[name]
    exported = outputs[output].max(axis=1) if output == "probs" else outputs[output]
    predicted = np.array([float(r[column]) for r in rows[: len(exported)]])
    scale = max(float(np.abs(predicted).max()), 1e-12)
    assert np.abs(exported - predicted).max() / scale < 1e-4, (exported, predicted)
    description = json.loads(out.with_suffix(".json").read_text())
    assert list(description["inputs"]) == list(model.export_input_keys) and output in description["outputs"]
    if name in ("bihpf", "patchcore_mvtec", "mtofnet"):  # smoke-fitted with --imagenet lite0: its statistics
        rgb = [v for v in description["normalization_inside"].values() if len(v["mean"]) == 3]
        assert rgb and all(v["mean"] == v["std"] == [0.5, 0.5, 0.5] for v in rgb)
    assert export.largest_difference(model, batch, out) < 1e-4
    assert not list(REPO.glob("predict*")), "export wrote predict's files into the working directory"


def test_the_readme_export_needs_no_data_and_refuses_what_it_cannot_export(
    fitted_runs, tmp_path: Path, capsys
) -> None:
    """As the README writes it: a config and a checkpoint, no predict_dir, no dataset on this machine (a root that
    is not there); any batch size then runs through the file (``--check``: one input and an odd batch). A video
    detector, whose scores no one graph gives, is refused in one line."""
    checkpoint = fitted_runs(CONFIGS / "patchcore_mvtec.yaml") / "checkpoints" / "last.ckpt"
    out = tmp_path / "patchcore.onnx"
    argv = [
        "--config",
        str(CONFIGS / "patchcore_mvtec.yaml"),
        "--ckpt_path",
        str(checkpoint),
        "--out",
        str(out),
    ]
    assert (
        export.run_from_command_line([*argv, "--data.init_args.root", str(tmp_path / "no_data"), "--check"])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        out.is_file()
        and "largest relative difference" in printed
        and "(one input, and an odd-sized batch)" in printed
    )
    assert float(printed.split("largest relative difference ")[1].split()[0]) < 1e-4
    video = fitted_runs(CONFIGS / "stylegru.yaml") / "checkpoints" / "last.ckpt"
    capsys.readouterr()  # what fitting it printed
    argv = [
        "--config",
        str(CONFIGS / "stylegru.yaml"),
        "--ckpt_path",
        str(video),
        "--out",
        str(tmp_path / "v.onnx"),
    ]
    assert export.run_from_command_line(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert (
        len(error) == 1
        and "ExportError: StyleGRUModule is not exported: its input is style latents" in error[0]
    )


def _resize_like_opencv_linear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """model.json's bilinear rule in NumPy: sample at ((x + 0.5) * in / out - 0.5), clamped, no antialiasing, with
    the fixed-point arithmetic OpenCV uses for 8-bit images (weights in 1/2048, its vectorized rounding)."""

    def taps(out: int, size: int) -> tuple[np.ndarray, ...]:
        position = (np.arange(out) + 0.5) * size / out - 0.5
        low = np.floor(position).astype(np.int64)
        fraction = (position - low).astype(np.float32)
        fraction[low < 0], low[low < 0] = 0.0, 0
        fraction[low >= size - 1], low[low >= size - 1] = 0.0, size - 1
        first = np.rint((1.0 - fraction) * 2048).astype(np.int64)
        return low, np.minimum(low + 1, size - 1), first, 2048 - first

    (y0, y1, b0, b1), (x0, x1, a0, a1) = taps(height, image.shape[0]), taps(width, image.shape[1])
    pixels = image.astype(np.int64)
    rows = pixels[:, x0] * a0[None, :, None] + pixels[:, x1] * a1[None, :, None]
    top = ((rows[y0] >> 4) * b0[:, None, None]) >> 16
    bottom = ((rows[y1] >> 4) * b1[:, None, None]) >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)


def tensor_from_model_json(path: Path, steps: list[dict]) -> np.ndarray:
    """A file to the model's input with PIL and NumPy alone, following model.json's numbers."""
    from PIL import Image, ImageOps

    image = None
    for step in steps:
        if step["step"] == "read":
            with Image.open(path) as opened:
                image = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
        elif step["step"] == "resize" and "size" in step:  # the shorter side to size, sides rounded
            h, w = image.shape[:2]
            scale = step["size"] / min(h, w)
            image = _resize_like_opencv_linear(image, max(1, round(h * scale)), max(1, round(w * scale)))
        elif step["step"] == "resize":
            image = _resize_like_opencv_linear(image, step["height"], step["width"])
        elif step["step"] == "center_crop":
            top, left = (image.shape[0] - step["height"]) // 2, (image.shape[1] - step["width"]) // 2
            image = image[top : top + step["height"], left : left + step["width"]]
        elif step["step"] == "scale":
            image = image.astype(np.float32) / step["divide_by"]
        elif step["step"] == "to_tensor":
            image = np.ascontiguousarray(image.transpose(2, 0, 1))[None].astype(np.float32)
        else:
            raise AssertionError(f"model.json step this reader does not know: {step}")
    return image


@pytest.mark.parametrize("name", ["bihpf", "patchcore_mvtec"])
def test_model_json_numbers_rebuild_predict_s_scores_from_the_files(
    name: str, run_cli, fitted_runs, tmp_path: Path, standin_root: Path
) -> None:
    """A non-Python user's path: the raw file, model.json's pre-processing numbers (PIL to read, NumPy for the
    rest), the ONNX file; the scores are predict's."""
    import onnxruntime as ort
    from PIL import Image

    run_dir = fitted_runs(CONFIGS / f"{name}.yaml")
    photos = sorted((standin_root / "forensynths_standin_tiny" / "test").rglob("*.png"))[:3]
    folder = tmp_path / "mine"
    folder.mkdir()
    for i, (photo, size) in enumerate(zip(photos, [(40, 52), (61, 45), (32, 32)], strict=True)):
        Image.open(photo).convert("RGB").resize(size).save(folder / f"{i}.png")  # any sizes, not square
    config = ["--config", str(CONFIGS / f"{name}.yaml")]
    checkpoint = str(run_dir / "checkpoints" / "last.ckpt")
    predict = run_cli(
        "predict", *config, "--ckpt_path", checkpoint, "--data.init_args.predict_dir", str(folder)
    )
    with open(predictions_file(predict)) as handle:
        predicted = {Path(r["path"]).name: r for r in csv.DictReader(handle)}
    argv = smoke_argv([*config, "--data.init_args.predict_dir", str(folder)], standin_root, tmp_path / "runs")
    out = export.main([*argv, "--ckpt_path", checkpoint, "--out", str(tmp_path / f"{name}.onnx")])
    description = json.loads(out.with_suffix(".json").read_text())
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    column, output = CASES[name]
    for file in sorted(folder.glob("*.png")):
        image = tensor_from_model_json(file, description["preprocessing"])
        (score,) = session.run([output], {"image": image})
        expected = float(predicted[file.name][column])
        # measured: within 4e-6 (the CSV's six decimals); a floored size or PIL's resize misses by 1e-3 and more
        assert abs(float(score[0]) - expected) <= 1e-4 * max(1.0, abs(expected)), (file.name, score, expected)
