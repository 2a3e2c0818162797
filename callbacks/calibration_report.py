"""The comparison table of post-hoc calibration: every calibrator fitted with every objective on the same
held-out logits, tested on the same test logits (what the SCTL paper's tables compare), and the logits themselves
for re-running the comparison without the network (``configs/cls_logits.yaml``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lightning_modules.metrics.calibration import calibration_report
from lightning_modules.outputs.tables import Component, write_result_table
from lightning_modules.post_processing.calibrators import CALIBRATORS, calibrate
from lightning_modules.post_processing.objectives import OBJECTIVES

TABLE_METRICS = ("ece", "aece", "cwece", "nll", "acc")


def table_row(name: str, report: dict[str, float]) -> dict[str, object]:
    """A table row: rates in %, NLL in nats."""
    row: dict[str, object] = {"group": name, "seen": ""}
    row.update({k: (report[k] if k == "nll" else 100.0 * report[k]) for k in TABLE_METRICS})
    return row


def compare_calibrators(
    calibration: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    out_dir: Path,
    n_bins: int = 15,
    components: Sequence[Component] = (),
    **fitting: Any,
) -> str:
    """Fit every calibrator x objective on ``calibration`` (logits, labels), evaluate on ``test``; write
    ``calibration.csv`` / ``calibration.md`` into ``out_dir`` (opening with ``components``, what produced the
    logits) and return the markdown. ``fitting`` goes to
    :func:`~lightning_modules.post_processing.calibrators.calibrate` (ets_space, norm, reduction, iterations)."""
    (cal_logits, cal_labels), (logits, labels) = calibration, test
    rows = [table_row("uncalibrated", calibration_report(logits, labels, n_bins))]
    for name in CALIBRATORS:
        if name == "pts" and logits.shape[1] < 10:
            continue  # PTS reads the top-10 logits
        for objective in OBJECTIVES:
            calibrator = calibrate(name, objective, cal_logits, cal_labels, **fitting)
            with torch.no_grad():
                report = calibration_report(calibrator(logits), labels, n_bins)
            rows.append(table_row(f"{name} / {objective}", report))
    title = f"Post-hoc calibration on {len(labels)} test samples (fitted on {len(cal_labels)} held out)"
    return write_result_table(
        rows, TABLE_METRICS, out_dir, title=title, stem="calibration", digits=2, components=components
    )
