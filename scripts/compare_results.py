"""Put several runs' ``results.csv`` side by side: ``python scripts/compare_results.py NAME=PATH ... [--metrics acc ap]``.

PATH is a results.csv or a run folder holding one. Prints a markdown table (one row per group).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_modules.outputs.tables import compare_tables, read_result_table


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", help="NAME=PATH pairs (PATH: results.csv or its run folder)")
    parser.add_argument("--metrics", nargs="+", default=["acc", "ap"])
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    tables = {}
    for spec in args.runs:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"{spec!r}: expected NAME=PATH")
        csv_path = Path(path) / "results.csv" if Path(path).is_dir() else Path(path)
        if not csv_path.is_file():
            parser.error(f"{csv_path}: no results.csv (run `python cli.py test ...` first)")
        tables[name] = read_result_table(csv_path)
    markdown = compare_tables(tables, args.metrics, args.title)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
