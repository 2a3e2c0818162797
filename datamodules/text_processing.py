"""Document preprocessing for topic models: words, the gensim dictionary, bags of words.

As the TVQ-VAE code prepares its corpora (yjyoo3312/TVQ-VAE, document_analysis): lowercase, alphabetic tokens, stop words out,
restricted to words WordNet knows as a noun, verb or adjective and lemmatized with WordNet's morphology
(``wordnet: false`` skips that step where WordNet is not installed), then gensim's ``Dictionary`` with the
usual document-frequency limits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from gensim.corpora import Dictionary
from gensim.parsing.preprocessing import STOPWORDS

from datamodules.wordnet import load_wordnet

WORD = re.compile(r"[a-z]+")
WORDNET_POS = ("n", "v", "a")  # noun, verb, adjective (the official code's NOUN, VERB, ADJ)


class WordNormalizer:
    """Maps a raw token to the word a topic model counts, or None when it does not count.

    Args:
        wordnet: Keep only WordNet nouns, verbs and adjectives, as their lemma (``dogs`` -> ``dog``).
        min_length: Shortest word kept (after lemmatization).
        stop_words: Words never counted (gensim's English list by default).
    """

    def __init__(
        self, wordnet: bool = True, min_length: int = 3, stop_words: Iterable[str] = STOPWORDS
    ) -> None:
        self.wordnet = load_wordnet() if wordnet else None
        self.min_length = min_length
        self.stop_words = frozenset(stop_words)
        self.word = functools.lru_cache(maxsize=None)(self._word)

    def _word(self, token: str) -> str | None:
        token = token.lower()
        if not token.isalpha() or not token.isascii() or token in self.stop_words:
            return None
        if self.wordnet is not None:
            lemma = next((m for pos in WORDNET_POS if (m := self.wordnet.morphy(token, pos))), None)
            if lemma is None or lemma in self.stop_words:
                return None
            token = lemma
        return token if len(token) >= self.min_length else None

    def words(self, text: str) -> list[str]:
        """The counted words of ``text``, in order."""
        return [w for token in WORD.findall(text.lower()) if (w := self.word(token))]


def dictionary_of(vocabulary: Sequence[str]) -> Dictionary:
    """gensim ``Dictionary`` whose word ``i`` is ``vocabulary[i]`` (a trained model's vocabulary, rebuilt without
    its corpus: one single-word document per word, so the ids follow the list's order)."""
    dictionary = Dictionary()
    dictionary.add_documents([[word] for word in vocabulary])
    return dictionary


def build_dictionary(
    texts: Sequence[Sequence[str]], no_below: int = 5, no_above: float = 0.5, keep_n: int | None = None
) -> Dictionary:
    """gensim ``Dictionary`` of ``texts`` without words in fewer than ``no_below`` documents or more than the
    ``no_above`` fraction of them, the ``keep_n`` most frequent kept (None: all)."""
    dictionary = Dictionary(texts)
    dictionary.filter_extremes(no_below=no_below, no_above=no_above, keep_n=keep_n)
    dictionary.compactify()
    if len(dictionary) == 0:
        raise ValueError(
            f"no word is left in the vocabulary (no_below={no_below}, no_above={no_above}, {len(texts)} "
            "documents): lower data.init_args.no_below or raise no_above"
        )
    return dictionary
