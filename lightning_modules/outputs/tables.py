"""Paper-style result tables: one row per group, then the means, written as CSV and markdown and printed.

Detection papers average ACC and AP over generators (each generator counts once, whatever its size); the
pooled "all images" row is added for completeness. When the seen generators are known, the table also gives the
mean over seen and over unseen ones, the comparison the generalisation papers are about. A table's first line names the components the run used where a stand-in
could have served (weights, encoders, data): a table made with a stand-in says so before anything else.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

MEAN, MEAN_SEEN, MEAN_UNSEEN, POOLED = "mean", "mean (seen)", "mean (unseen)", "all images"


def summary_rows(
    per_group: Mapping[str | None, Mapping[str, float]],
    metrics: Sequence[str],
    seen: Sequence[str] | None = None,
    controls: Sequence[str] = (),
) -> list[dict[str, object]]:
    """Rows ``{"group", "seen", <metric>...}`` in %: each group, the means, and the pooled row (key ``None``).

    ``controls`` are test groups that are no generator (e.g. blurred reals against seen fakes): their rows are
    labelled ``control`` and left out of the means, which stay about generators.
    """
    every_group = [g for g in per_group if g is not None]
    control_names = set(controls)
    control_set = {g for g in every_group if _is_seen(g, control_names)}
    groups = [g for g in every_group if g not in control_set]
    seen_set = set(seen or ())
    rows: list[dict[str, object]] = []
    for group in every_group:
        label = "control" if group in control_set else _seen_label(group, seen, seen_set)
        row: dict[str, object] = {"group": group, "seen": label}
        row.update({m: 100.0 * per_group[group][m] for m in metrics})
        rows.append(row)

    def mean_row(name: str, members: list[str], seen_label: str) -> None:
        if members:
            row: dict[str, object] = {"group": name, "seen": seen_label}
            row.update({m: _nanmean([100.0 * per_group[g][m] for g in members]) for m in metrics})
            rows.append(row)

    if len(groups) > 1:
        mean_row(MEAN, groups, "")
        if seen:
            seen_groups = [g for g in groups if _is_seen(g, seen_set)]
            unseen_groups = [g for g in groups if not _is_seen(g, seen_set)]
            if seen_groups and unseen_groups:
                mean_row(MEAN_SEEN, seen_groups, "yes")
                mean_row(MEAN_UNSEEN, unseen_groups, "no")
    if None in per_group:
        row = {"group": POOLED, "seen": ""}
        row.update({m: 100.0 * per_group[None][m] for m in metrics})
        rows.append(row)
    return rows


def _is_seen(group: str, seen: set[str]) -> bool:
    """A group is seen when it, or its generator part (``generator/category``), is among the seen names."""
    return group in seen or group.split("/")[0] in seen


def _seen_label(group: str, seen: Sequence[str] | None, seen_set: set[str]) -> str:
    if not seen:
        return ""
    return "yes" if _is_seen(group, seen_set) else "no"


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def format_markdown(
    rows: Sequence[Mapping[str, object]], metrics: Sequence[str], title: str = "", digits: int = 1
) -> str:
    """A markdown table; the ``seen`` column only appears when some row has a seen label."""
    with_seen = any(row.get("seen") for row in rows)
    header = ["group"] + (["seen"] if with_seen else []) + list(metrics)
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for row in rows:
        cells = [str(row["group"])] + ([str(row.get("seen", ""))] if with_seen else [])
        cells += [_fmt(row[m], digits) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: object, digits: int = 1) -> str:
    return "—" if isinstance(value, float) and math.isnan(value) else f"{value:.{digits}f}"


class Component(NamedTuple):
    """A part of a run that a stand-in could have replaced, as it was: ``text``, and whether it is a stand-in."""

    text: str
    stand_in: bool = False


def components_line(components: Sequence[Component]) -> str:
    """ "STAND-INS: a; b. Also: c" when a component is a stand-in, else "Components: a; b; c"."""
    stand_ins = [c.text for c in components if c.stand_in]
    others = [c.text for c in components if not c.stand_in]
    if stand_ins:
        return "STAND-INS: " + "; ".join(stand_ins) + (". Also: " + "; ".join(others) if others else "")
    return "Components: " + "; ".join(others)


def write_result_table(
    rows: Sequence[Mapping[str, object]],
    metrics: Sequence[str],
    out_dir: str | Path,
    title: str = "",
    stem: str = "results",
    digits: int = 1,
    components: Sequence[Component] = (),
) -> str:
    """Write ``<stem>.csv`` and ``<stem>.md`` into ``out_dir`` and return the markdown (``digits`` decimals);
    with ``components``, their line opens the markdown and is ``<stem>_components.txt`` beside the CSV, which stays
    a plain table (its first line is the header: ``pandas.read_csv`` and ``csv.DictReader`` read it as it is)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = ["group", "seen", *metrics]
    line = components_line(components) if components else ""
    if line:
        (out_dir / f"{stem}_components.txt").write_text(line + "\n")
    with open(out_dir / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{row[k]:.4f}" if isinstance(row.get(k), float) else row.get(k, "")) for k in fields}
            )
    markdown = (f"_{line}_\n\n" if line else "") + format_markdown(rows, metrics, title, digits)
    (out_dir / f"{stem}.md").write_text(markdown)
    return markdown


def read_result_table(path: str | Path) -> list[dict[str, object]]:
    """Rows of a ``results.csv`` with metric columns as floats (for comparing runs)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    return [{k: (v if k in ("group", "seen") else float(v)) for k, v in row.items()} for row in rows]


def compare_tables(
    tables: Mapping[str, Sequence[Mapping[str, object]]],
    metrics: Sequence[str] = ("acc", "ap"),
    title: str = "",
    cell: Callable[[Any], str] | None = None,
) -> str:
    """One markdown table with a row per group and ``<run> <metric>`` columns, from several runs' rows.

    Groups keep the order of the first run; a group missing from a run shows as —. ``cell`` writes a metric's
    value (default: a number with one decimal; a demo over seeds passes the seeds' values and ``mean ± sd``).
    """
    cell = cell or (lambda value: _fmt(float(value)))
    runs = list(tables)
    order: list[str] = []
    seen_label: dict[str, str] = {}
    for rows in tables.values():
        for row in rows:
            group = str(row["group"])
            if group not in order:
                order.append(group)
                seen_label[group] = str(row.get("seen", ""))
    lookup = {run: {str(r["group"]): r for r in rows} for run, rows in tables.items()}
    with_seen = any(seen_label.values())
    header = ["group"] + (["seen"] if with_seen else []) + [f"{run} {m}" for run in runs for m in metrics]
    lines = [f"### {title}", ""] if title else []
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for group in order:
        cells = [group] + ([seen_label[group]] if with_seen else [])
        for run in runs:
            row = lookup[run].get(group)
            cells += [cell(row[m]) if row is not None else "—" for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
