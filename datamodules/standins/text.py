"""Text stand-ins from the corpora gensim ships for its own tests, written as the JSONL corpus layout.

* ``mini_newsgroup``: 200 real 20 Newsgroups posts of two groups (alt.atheism, sci.space), labeled, stored
  by gensim as a zlib-compressed Python-2 pickle of a scikit-learn ``Bunch``. It is read with an unpickler that
  only admits the handful of classes such a file names (dict, the ndarray reconstructor), so a tampered file
  cannot run code. The mail headers (everything before the first blank line) are removed, as the 20
  Newsgroups loader does with ``remove=('headers', ...)``.
* ``lee_background``: 300 Australian news articles (Lee et al.'s background corpus), one per line, unlabeled.

Each becomes ``<out>/corpus.jsonl`` with ``{"text": ..., "label": ...}`` rows, read by the same code as a user's
JSONL corpus. ``tiny`` keeps a seeded 60 documents (tests), ``small`` all of them (demo).
"""

from __future__ import annotations

import io
import json
import pickle
import random
import zlib
from pathlib import Path

import gensim

TEST_DATA = Path(gensim.__file__).resolve().parent / "test" / "test_data"
STANDINS = ("mini_newsgroup", "lee_background")
TINY_DOCUMENTS = 60


class _BunchUnpickler(pickle.Unpickler):
    """Admits only what a pickled scikit-learn ``Bunch`` of strings and label arrays needs."""

    ALLOWED = {
        ("copy_reg", "_reconstructor"),
        ("sklearn.datasets.base", "Bunch"),
        ("sklearn.utils", "Bunch"),
        ("sklearn.utils._bunch", "Bunch"),
        ("__builtin__", "dict"),
        ("builtins", "dict"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a newsgroup pickle")
        if name in ("Bunch", "dict"):
            return dict
        if name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor
        import numpy as np

        return {"_reconstruct": np._core.multiarray._reconstruct, "ndarray": np.ndarray, "dtype": np.dtype}[
            name
        ]


def read_mini_newsgroup(path: Path = TEST_DATA / "mini_newsgroup") -> tuple[list[str], list[str]]:
    """(texts, group names) of gensim's ``mini_newsgroup`` file."""
    bunch = _BunchUnpickler(io.BytesIO(zlib.decompress(path.read_bytes())), encoding="latin1").load()
    names = [str(n) for n in bunch["target_names"]]
    texts = [str(t).partition("\n\n")[2] for t in bunch["data"]]  # drop the mail headers
    return texts, [names[int(i)] for i in bunch["target"]]


def read_lee_background(path: Path = TEST_DATA / "lee_background.cor") -> list[str]:
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]


def write_text_standin(out_dir: Path, standin: str, size: str, seed: int = 0) -> None:
    """``<out_dir>/corpus.jsonl`` from gensim's ``standin`` corpus (all documents, or ``tiny``'s seeded 60)."""
    if standin == "mini_newsgroup":
        texts, labels = read_mini_newsgroup()
        rows = [{"text": t, "label": g} for t, g in zip(texts, labels, strict=True)]
    elif standin == "lee_background":
        rows = [{"text": t} for t in read_lee_background()]
    else:
        raise ValueError(f"data.init_args.standin must be one of {list(STANDINS)}, got {standin!r}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)  # the newsgroup file lists each group's posts together
    if size == "tiny":
        order = order[:TINY_DOCUMENTS]
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for i in order:
            handle.write(json.dumps(rows[i]) + "\n")
