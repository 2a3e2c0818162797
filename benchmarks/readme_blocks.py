"""Tables that scripts write into READMEs, between ``<!-- name -->`` and ``<!-- /name -->`` markers, so a number
in a README is the one its command produced and never a hand copy."""

from __future__ import annotations

from pathlib import Path


def replace_block(readme: Path, name: str, markdown: str) -> None:
    """Put ``markdown`` between the markers ``name`` in ``readme`` (appended under a new pair when absent)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = readme.read_text()
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def read_block(readme: Path, name: str) -> str | None:
    """The markdown between the markers ``name``, or None."""
    text = readme.read_text()
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()
