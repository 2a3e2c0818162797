"""Your text files, read with errors that name the file and line: a ``.jsonl`` corpus (one ``{"text": ...,
"label": ...}`` per line) or a folder of ``.txt`` files (a sub-folder's name is the label)."""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.base import DatasetNotFoundError


def utf8_lines(path: Path) -> list[str]:
    """The file's lines, decoded as UTF-8; a byte that is not UTF-8 is one ``ValueError`` naming the file, the
    line and the byte (not a UnicodeDecodeError with a position in the whole file)."""
    lines = []
    for number, raw in enumerate(path.read_bytes().splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise ValueError(
                f"{path}:{number}: not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); save the "
                "file as UTF-8"
            ) from None
    return lines


def read_jsonl(path: Path) -> list[tuple[str, str, str | None]]:
    """(``<file>:<line>``, text, label or None) per non-empty line of a JSONL file."""
    rows = []
    for number, line in enumerate(utf8_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = str(row["text"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f'{path}:{number}: expected a JSON object with a "text" key') from None
        rows.append((f"{path}:{number}", text, None if row.get("label") is None else str(row["label"])))
    return rows


def read_text_files(folder: Path, key: str) -> list[tuple[str, str, str | None]]:
    """(path, text, label: the sub-folder's name or None) per ``.txt`` file under ``folder``."""
    files = sorted(folder.rglob("*.txt"))
    if not files:
        raise DatasetNotFoundError(f"no .txt file under {key}={str(folder)!r}")
    return [(str(f), "\n".join(utf8_lines(f)), None if f.parent == folder else f.parent.name) for f in files]
