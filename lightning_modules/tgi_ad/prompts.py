"""Keyword-to-prompt, step one: the object name expanded through WordNet into candidate prompts.

The paper expands the object's name with WordNet synonyms, hypernyms and hyponyms and builds prompts from the
expanded words; our reading (METHODS.md): nouns only, depth 1, the templates "a photo of a {w}" and "a photo of a
flawless {w}". Choosing among the candidates with CLIP (text vs the normal images) is the next step. WordNet is the
offline copy ``datamodules.wordnet`` reads (Debian's wordnet-base); nothing is downloaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from datamodules.wordnet import load_wordnet

log = logging.getLogger(__name__)

TEMPLATES = ("a photo of a {w}", "a photo of a flawless {w}")
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
            log.warning("%r has no object sense in WordNet (%s): expanding all its noun senses", keyword,
                        ", ".join(sorted({s.lexname() for s in synsets})))  # fmt: skip
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
    return {"synonyms": words(synsets), "hypernyms": words(related["hypernyms"]),
            "hyponyms": words(related["hyponyms"])}  # fmt: skip


def candidate_prompts(keyword: str, templates: Sequence[str] = TEMPLATES, depth: int = 1) -> list[str]:
    """Every template filled with the keyword and each expanded word (the keyword's prompts first)."""
    expanded = expand_keyword(keyword, depth)
    words = [keyword] + sorted({w for group in expanded.values() for w in group})
    return [_article(template.format(w=word)) for word in words for template in templates]


def _article(prompt: str) -> str:
    """ "a apple" -> "an apple" (only before a vowel-initial word)."""
    return re.sub(r"\ba (?=[aeiouAEIOU])", "an ", prompt)
