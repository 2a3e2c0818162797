"""Keyword-to-prompt, step one: the object name's WordNet expansion filled into candidate prompts.

The paper expands the object's name with WordNet synonyms, hypernyms and hyponyms and builds prompts from the
expanded words; our reading: nouns only, depth 1, the templates "a photo of a {w}" and "a photo of a flawless {w}".
The expansion is a WordNet query the datamodule answers (``MVTecDataModule.expand_keyword``, over Debian's
wordnet-base; nothing is downloaded). Choosing among the candidates with CLIP is the next step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TEMPLATES = ("a photo of a {w}", "a photo of a flawless {w}")


def candidate_prompts(
    keyword: str, expanded: dict[str, list[str]], templates: Sequence[str] = TEMPLATES
) -> list[str]:
    """Every template filled with the keyword and each word of its WordNet ``expanded`` (the keyword's first)."""
    words = [keyword] + sorted({w for group in expanded.values() for w in group})
    return [_article(template.format(w=word)) for word in words for template in templates]


def _article(prompt: str) -> str:
    """ "a apple" -> "an apple" (only before a vowel-initial word)."""
    return re.sub(r"\ba (?=[aeiouAEIOU])", "an ", prompt)
