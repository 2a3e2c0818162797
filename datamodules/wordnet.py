"""WordNet 3.0 from the operating system's package, read with NLTK's reader, never downloaded at run time.

``make install`` installs Debian's ``wordnet-base`` (``/usr/share/wordnet``). NLTK's reader also wants the
``lexnames`` table, which that package does not ship: it is the fixed list of WordNet 3.0's 45 lexicographer
files, so it is written beside a copy of the package's files (34 MB, once) in a cache folder NLTK may read.
``WORDNET_DIR`` points to another WordNet 3.0 ``dict`` folder.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Any

SEARCH_PATHS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/WordNet-3.0/dict")
REQUIRED = ("index.noun", "data.noun", "index.verb", "data.verb", "index.adj", "data.adj", "noun.exc")
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive "
    "noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity "
    "noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change verb.cognition "
    "verb.communication verb.competition verb.consumption verb.contact verb.creation verb.emotion verb.motion "
    "verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


class WordNetNotFoundError(FileNotFoundError):
    """No WordNet data on this machine."""


def wordnet_source() -> Path | None:
    """The first folder holding WordNet 3.0's database files (``WORDNET_DIR`` first), or None."""
    candidates = [os.environ["WORDNET_DIR"]] if os.environ.get("WORDNET_DIR") else []
    for folder in map(Path, candidates + list(SEARCH_PATHS)):
        if all((folder / name).is_file() for name in REQUIRED):
            return folder
    return None


def _nltk_folder(source: Path) -> Path:
    """A folder NLTK's reader accepts: ``source``'s files plus ``lexnames`` (written once)."""
    if (source / "lexnames").is_file():
        return source
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "robust-vision-lab" / "wordnet"
    cache.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():  # copies, not links: NLTK refuses files that resolve outside its root
        copy = cache / file.name
        if file.is_file() and (not copy.is_file() or copy.stat().st_size != file.stat().st_size):
            shutil.copyfile(file, copy)
    lexnames = cache / "lexnames"
    if not lexnames.is_file():
        rows = [f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES)]
        lexnames.write_text("\n".join(rows) + "\n")
    return cache


@functools.cache
def load_wordnet() -> Any:
    """NLTK's ``WordNetCorpusReader`` over the installed WordNet; a one-line error when there is none."""
    source = wordnet_source()
    if source is None:
        raise WordNetNotFoundError(
            "WordNet 3.0 not found (looked in $WORDNET_DIR and " + ", ".join(SEARCH_PATHS) + "): install it "
            "with `apt-get install wordnet-base` (make install does), or set WORDNET_DIR to its dict folder"
        )
    import warnings

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class WordNet30Reader(WordNetCorpusReader):
        def map_wn(self, version: str = "wordnet") -> None:
            """The data is WordNet 3.0 itself: no mapping (NLTK would look for its downloaded copy)."""
            return None

    folder = _nltk_folder(source)
    if str(folder) not in nltk.data.path:
        nltk.data.path.append(str(folder))  # NLTK only reads folders on its data path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return WordNet30Reader(str(folder), None)
