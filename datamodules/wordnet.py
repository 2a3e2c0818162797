"""WordNet 3.0 from the operating system's package, read with NLTK's reader, never downloaded at run time.

``make install`` installs Debian's ``wordnet-base`` (``/usr/share/wordnet``). NLTK's reader also wants the
``lexnames`` table, which that package does not ship: it is the fixed list of WordNet 3.0's 45 lexicographer
files, so it is written beside a copy of the package's files (34 MB, once) in a cache folder NLTK may read.
``WORDNET_DIR`` points to another WordNet 3.0 ``dict`` folder. :func:`expand_keyword` is the one query the
methods make: the nouns WordNet relates to an object's name (text-guided generation builds prompts from them and
reaches it through its datamodule, ``MVTecDataModule.expand_keyword``).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
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


# senses an inspected object can have (WordNet lexicographer files): "screw" the fastener and the propeller, not
# the slang senses
OBJECT_SENSES = ("noun.artifact", "noun.object", "noun.substance", "noun.food", "noun.plant")


def expand_keyword(
    keyword: str, depth: int = 1, senses: Sequence[str] = OBJECT_SENSES
) -> dict[str, list[str]]:
    """The keyword's noun synonyms (lemmas of its synsets in ``senses``), hypernyms and hyponyms up to ``depth``
    levels, as readable words (underscores to spaces), each list sorted and without the keyword itself."""
    wordnet = load_wordnet()

    def lookup(word: str, only_objects: bool = True) -> list:
        found = wordnet.synsets(word.strip().replace(" ", "_"), pos="n")
        return [s for s in found if s.lexname() in senses or not only_objects]

    synsets = lookup(keyword) or lookup(keyword.split()[-1])  # "metal nut": WordNet knows "nut"
    if not synsets:  # no object sense ("coins": a coin is noun.possession): every noun sense, said in the log
        synsets = lookup(keyword, only_objects=False) or lookup(keyword.split()[-1], only_objects=False)
        if synsets:
            log.warning(
                "%r has no object sense in WordNet (%s): expanding all its noun senses",
                keyword,
                ", ".join(sorted({s.lexname() for s in synsets})),
            )
    if not synsets:
        raise ValueError(
            f"{keyword!r} is not a WordNet noun: give the object's name (e.g. screw, bottle, carpet)"
        )

    def words(found) -> list[str]:
        names = {lemma.replace("_", " ") for synset in found for lemma in synset.lemma_names()}
        return sorted(names - {keyword})

    related = {"hypernyms": set(), "hyponyms": set()}
    for relation in related:
        frontier = set(synsets)
        for _ in range(depth):
            frontier = {other for synset in frontier for other in getattr(synset, relation)()}
            related[relation] |= frontier
    return {
        "synonyms": words(synsets),
        "hypernyms": words(related["hypernyms"]),
        "hyponyms": words(related["hyponyms"]),
    }
