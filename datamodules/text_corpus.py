"""Document corpora for topic models: 20 Newsgroups, a JSONL file, or a folder of ``.txt`` files.

Batches are dicts: ``bow`` (B, V) word counts over the gensim dictionary, ``index`` (B,) the document's row in
the whole kept corpus (all splits; models keep per-document tables such as conceptual bags by it), ``label``
(B,) the class (-1 when the corpus has none). The datamodule also holds what topic metrics need: the
``dictionary`` and every kept document's ``texts`` (word lists; NPMI is computed over them), and gives the
contextual token vectors TVQ-VAE quantizes through :meth:`token_embeddings` (computed once, cached).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from datamodules.base import BaseDataModule, DatasetNotFoundError
from datamodules.standins.text import STANDINS, write_text_standin
from datamodules.text_files import read_jsonl, read_text_files
from datamodules.text_processing import WordNormalizer, build_dictionary, dictionary_of
from datamodules.token_embeddings import PACKAGED_ENCODER, TokenEmbeddings, cached_token_embeddings

log = logging.getLogger(__name__)

CorpusFormat = Literal["20newsgroups", "jsonl", "folder"]


class BagOfWordsDataset(Dataset):
    """Documents ``indices`` of a corpus as dense word-count vectors."""

    def __init__(
        self,
        bows: list[list[tuple[int, int]]],
        labels: list[int],
        indices: list[int],
        vocab_size: int,
        paths: list[str] | None = None,
    ):
        self.bows, self.labels, self.indices, self.vocab_size = bows, labels, indices, vocab_size
        self.paths = paths  # where each document came from (a user's documents in predict)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, Any]:
        index = self.indices[item]
        bow = torch.zeros(self.vocab_size)
        for word, count in self.bows[index]:
            bow[word] = count
        sample = {"bow": bow, "index": index, "label": self.labels[index]}
        return sample | ({"path": self.paths[index]} if self.paths is not None else {})


class TextCorpusDataModule(BaseDataModule):
    """A document corpus, preprocessed for topic models and split into train / val / test.

    Args:
        corpus: ``20newsgroups`` (scikit-learn's fetcher; downloads into ``root`` when online, else reads its
            cache there), ``jsonl`` (``root`` is a ``.jsonl`` file, or a folder holding one, with ``text`` and an
            optional ``label`` per line) or ``folder`` (``root/**/*.txt``; the sub-folder name is the label).
        standin: With ``synthetic: true``: gensim's ``mini_newsgroup`` (200 labeled posts) or
            ``lee_background`` (300 news articles).
        split_boundaries: Documents ``[:a]`` train, ``[a:b]`` validation, ``[b:]`` test, in corpus order (the
            official 20NG split is ``[11415, 13862]``); null, or a stand-in: ``split_fractions`` of a seeded
            shuffle.
        split_fractions: Train and validation fractions (the rest is the test split).
        min_length, no_below, no_above, keep_n: Word length and document-frequency limits of the vocabulary.
        wordnet: Keep WordNet nouns / verbs / adjectives, lemmatized (needs ``wordnet-base``; make install).
        encoder: Frozen transformers encoder for token vectors (TVQ-VAE): a local folder or a cached hub id;
            the paper uses ``bert-base-uncased``.
        encoder_fallback: Used (with a warning) when ``encoder`` cannot be loaded; null makes that an error.
        max_tokens: Word-pieces per document given to the encoder (BERT's 512).
        cache_dir: Where token vectors are cached (default ``.cache`` beside the documents).
        predict_dir: ``predict`` on your documents instead of the test split: a folder of ``.txt`` files
            (searched recursively) or a ``.jsonl`` file (a ``text`` per line). They are counted in the training
            vocabulary and get a row each in ``predictions.csv``: main topic, its probability, every topic's
            proportion. From a checkpoint the corpus is not read (the checkpoint holds the vocabulary).
        vocabulary: The words, in id order, to count documents in instead of building the vocabulary from the
            corpus. Left null, a checkpoint sets it to the vocabulary its model was trained with (``test`` and
            ``predict``), so that word ids always mean what they meant in training.
    """

    layout = "text_corpus"
    standin_version = 1

    def __init__(
        self,
        corpus: CorpusFormat = "20newsgroups",
        standin: Literal["mini_newsgroup", "lee_background"] = "mini_newsgroup",
        split_boundaries: list[int] | None = None,
        split_fractions: tuple[float, float] = (0.85, 0.10),
        min_length: int = 3,
        no_below: int = 5,
        no_above: float = 0.5,
        keep_n: int | None = 2000,
        wordnet: bool = True,
        encoder: str = "bert-base-uncased",
        encoder_fallback: str | None = PACKAGED_ENCODER,
        max_tokens: int = 512,
        embed_batch_size: int = 16,
        cache_dir: str | None = None,
        download: bool = True,
        vocabulary: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("root", "data/20newsgroups")
        kwargs.setdefault("batch_size", 256)
        kwargs.setdefault("num_workers", 0)
        super().__init__(**kwargs)
        if corpus not in ("20newsgroups", "jsonl", "folder"):
            raise ValueError(f"data.init_args.corpus must be 20newsgroups, jsonl or folder, got {corpus!r}")
        if standin not in STANDINS:
            raise ValueError(f"data.init_args.standin must be one of {list(STANDINS)}, got {standin!r}")
        train, val = split_fractions
        if not (0 < train and 0 <= val and train + val < 1):
            raise ValueError(
                f"data.init_args.split_fractions must be (train, val) with train + val < 1, got {split_fractions}"
            )
        self.corpus, self.standin = corpus, standin
        self.split_boundaries, self.split_fractions = split_boundaries, (train, val)
        self.min_length, self.no_below, self.no_above, self.keep_n = min_length, no_below, no_above, keep_n
        self.wordnet = wordnet
        self.encoder, self.encoder_fallback = encoder, encoder_fallback
        self.max_tokens, self.embed_batch_size = max_tokens, embed_batch_size
        self.cache_dir = cache_dir
        self.download = download
        if vocabulary is not None and (not vocabulary or len(set(vocabulary)) != len(vocabulary)):
            raise ValueError(f"data.init_args.vocabulary must be distinct words, got {len(vocabulary)} words")
        self.vocabulary = vocabulary
        self.dictionary = None
        self.texts: list[list[str]] = []  # each document's vocabulary words
        self.lemmatized_texts: list[list[str]] = []  # each document's words after lemmatizing, any vocabulary
        self.documents: list[str] = []
        self.labels: list[int] = []
        self.label_names: list[str] = []
        self.split_indices: dict[str, list[int]] = {}
        self._normalizer: WordNormalizer | None = None
        self._embeddings: TokenEmbeddings | None = None
        self._newsgroups: tuple[list[str], list[str]] | None = None

    # ----------------------------------------------------------------------------------------------- data
    @property
    def data_dir(self) -> Path:
        if self.synthetic:
            return Path(self.root) / f"{self.layout}_standin_{self.standin}_{self.standin_size}"
        return Path(self.root)

    def write_standin(self, out_dir: Path) -> None:
        partial = out_dir.with_name(out_dir.name + ".partial")
        write_text_standin(partial, self.standin, self.standin_size, seed=self.seed)
        (partial / "STANDIN.json").write_text(
            json.dumps({"version": self.standin_version, "standin": self.standin})
        )
        partial.rename(out_dir)

    def check_data_present(self) -> None:
        if self.corpus == "20newsgroups":
            self._read_20newsgroups(download=self.download)  # fetches into root once when online
        elif not Path(self.root).exists():
            raise DatasetNotFoundError(self.missing_data_message())

    def missing_data_message(self) -> str:
        return (
            f'data.init_args.root={self.root!r} does not exist: give a .jsonl file (one {{"text": ..., '
            f'"label": ...}} per line) or a folder of .txt files (corpus: folder), or run the stand-in '
            "(data.init_args.synthetic: true)"
        )

    def _read_20newsgroups(self, download: bool) -> tuple[list[str], list[str]]:
        """The corpus and its group names, read once per datamodule (checking that it is there reads it)."""
        if self._newsgroups is not None:
            return self._newsgroups
        from sklearn.datasets import fetch_20newsgroups

        try:
            bunch = fetch_20newsgroups(
                data_home=self.root,
                subset="all",
                remove=("headers", "footers", "quotes"),
                download_if_missing=download,
                shuffle=False,
            )
        except (OSError, ConnectionError) as error:
            raise DatasetNotFoundError(
                f"20 Newsgroups is not under data.init_args.root={self.root!r} and could not be downloaded "
                f"({str(error).splitlines()[0][:100]}): run once online (scikit-learn's fetcher caches "
                "20news-bydate in root), or use the stand-in (data.init_args.synthetic: true)"
            ) from None
        self._newsgroups = list(bunch.data), [bunch.target_names[t] for t in bunch.target]
        return self._newsgroups

    def read_documents(self) -> tuple[list[str], list[str | None]]:
        """(texts, label names or None) of the whole corpus, in its order."""
        if self.synthetic or self.corpus == "jsonl":
            path = self.data_dir
            if path.is_dir():
                found = sorted(path.glob("*.jsonl"))
                if not found:
                    raise DatasetNotFoundError(f"no .jsonl file in data.init_args.root={str(path)!r}")
                path = found[0]
            rows = read_jsonl(path)
            return [text for _, text, _ in rows], [label for _, _, label in rows]
        if self.corpus == "folder":
            rows = read_text_files(Path(self.root), "data.init_args.root")
            return [text for _, text, _ in rows], [label for _, _, label in rows]
        return self._read_20newsgroups(download=False)

    def setup(self, stage: str | None = None) -> None:
        if self.dictionary is None:
            if self.vocabulary is not None and self.predicting_a_folder(stage):
                self._normalizer = WordNormalizer(wordnet=self.wordnet, min_length=self.min_length)
                self.dictionary = dictionary_of(self.vocabulary)  # your documents only: no corpus is read
            else:
                self._setup_corpus()
        if stage == "predict" and self.predict_dir and "predict_dir" not in self.datasets:
            self._use_predict_documents(Path(self.predict_dir))

    def _use_predict_documents(self, source: Path) -> None:
        """Make ``source``'s documents the ones the loaders and the token vectors serve (rows ``0..n-1``, label
        -1), counted in the training corpus's vocabulary; documents with no vocabulary word are named and
        skipped (a topic model cannot place them)."""
        if source.is_file() and source.suffix == ".jsonl":
            rows = read_jsonl(source)
        elif source.is_dir():
            rows = read_text_files(source, "data.init_args.predict_dir")
        else:
            raise DatasetNotFoundError(
                f"data.init_args.predict_dir={str(source)!r} is neither a folder of .txt files nor a .jsonl file"
            )
        texts = [self._normalizer.words(text) for _, text, _ in rows]
        vocabulary = self.dictionary.token2id
        placed = [any(w in vocabulary for w in words) for words in texts]
        kept = [i for i, ok in enumerate(placed) if ok]
        skipped = [row[0] for row, ok in zip(rows, placed, strict=True) if not ok]
        if skipped:
            log.warning(
                "predict_dir: %d documents without a word of the vocabulary skipped: %s",
                len(skipped),
                ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
            )
        if not kept:
            raise DatasetNotFoundError(
                f"data.init_args.predict_dir={str(source)!r}: no document has a word of the training vocabulary"
            )
        self._keep_documents([row[1] for row in rows], texts, kept, vocabulary)
        self.labels = [-1] * len(kept)
        self._embeddings = None  # the token vectors of these documents, from now on
        bows = [self.dictionary.doc2bow(t) for t in self.texts]
        paths = [rows[i][0] for i in kept]
        self.datasets = {
            "predict_dir": BagOfWordsDataset(
                bows, self.labels, list(range(len(kept))), len(self.dictionary), paths
            )
        }

    def _keep_documents(
        self, documents: list[str], texts: list[list[str]], kept: list[int], vocabulary: dict[str, int]
    ) -> None:
        """Serve the ``kept`` documents: their text, their lemmatised words (what the official code computes NPMI
        over) and those words that are in ``vocabulary`` (what the models count)."""
        self.documents = [documents[i] for i in kept]
        self.lemmatized_texts = [texts[i] for i in kept]
        self.texts = [[w for w in texts[i] if w in vocabulary] for i in kept]

    def _setup_corpus(self) -> None:
        self.prepare_data()  # the CLI asks for vocab_size before the trainer would call it (idempotent)
        documents, label_names = self.read_documents()
        self._normalizer = WordNormalizer(wordnet=self.wordnet, min_length=self.min_length)
        texts = [self._normalizer.words(d) for d in documents]
        if self.vocabulary is not None:
            dictionary = dictionary_of(self.vocabulary)
        else:
            dictionary = build_dictionary(texts, self.no_below, self.no_above, self.keep_n)
        kept = [i for i, t in enumerate(texts) if any(w in dictionary.token2id for w in t)]
        if len(kept) < len(texts):
            log.warning(
                "dropped %d of %d documents with no vocabulary word left (empty or stop words only)",
                len(texts) - len(kept),
                len(texts),
            )
        self._keep_documents(documents, texts, kept, dictionary.token2id)
        self.dictionary = dictionary
        names = sorted({label_names[i] for i in kept if label_names[i] is not None})
        self.label_names = names
        self.labels = [-1 if label_names[i] is None else names.index(label_names[i]) for i in kept]
        self.split_indices = self._split(len(kept))
        bows = [dictionary.doc2bow(t) for t in self.texts]
        for split, indices in self.split_indices.items():
            self.datasets[split] = BagOfWordsDataset(bows, self.labels, indices, len(dictionary))
        log.info(
            "%s: %d documents (%s), %d words in the vocabulary",
            self.data_dir,
            len(kept),
            ", ".join(f"{s} {len(i)}" for s, i in self.split_indices.items()),
            len(dictionary),
        )

    def _split(self, n: int) -> dict[str, list[int]]:
        if self.split_boundaries is not None and not self.synthetic:  # boundaries belong to one real corpus
            a, b = self.split_boundaries
            if not 0 < a <= b < n:
                raise ValueError(
                    f"data.init_args.split_boundaries={self.split_boundaries} do not fit {n} documents"
                )
            order = list(range(n))
        else:
            order = list(range(n))
            random.Random(self.seed).shuffle(order)
            a = int(round(self.split_fractions[0] * n))
            b = a + int(round(self.split_fractions[1] * n))
        return {"train": sorted(order[:a]), "val": sorted(order[a:b]), "test": sorted(order[b:])}

    # ------------------------------------------------------------------------------------------- contracts
    @property
    def vocab_size(self) -> int:
        """Words in the vocabulary (linked to ``model.init_args.vocab_size``)."""
        if self.vocabulary is not None:
            return len(self.vocabulary)
        self.setup()
        return len(self.dictionary)

    @property
    def num_classes(self) -> int:
        """Label names; with a ``vocabulary`` the count known so far (a predict on your documents reads no corpus)."""
        if self.vocabulary is None:
            self.setup()
        return len(self.label_names)

    def components(self) -> list[tuple[str, bool]]:
        """The data, and the token encoder when token vectors were read (a stand-in when it is the fallback)."""
        found = super().components()
        if self._embeddings is not None:
            used, asked = self._embeddings.encoder, self.encoder
            text = f"token encoder {used}" + (
                f" (stands in for {asked}, which could not be loaded)" if used != asked else ""
            )
            found.append((text, used != asked))
        return found

    def token_embeddings(self) -> TokenEmbeddings:
        """Valid-token vectors of every kept document, in ``index`` order (cached under ``cache_dir``)."""
        self.setup()
        if self._embeddings is None:
            self._embeddings = cached_token_embeddings(
                self.token_cache_dir(),
                self.documents,
                self.dictionary,
                self._normalizer,
                self.encoder,
                self.encoder_fallback,
                self.max_tokens,
                self.embed_batch_size,
            )
        return self._embeddings

    def token_cache_dir(self) -> Path:
        """``cache_dir``, else ``.cache`` beside the documents the vectors are of: in the corpus folder, or the
        folder of a corpus .jsonl file; for a predict on your documents (whose corpus root need not exist, and is
        never created), beside those."""
        if self.cache_dir:
            return Path(self.cache_dir)
        source = Path(self.predict_dir) if "predict_dir" in self.datasets else self.data_dir
        return (source if source.is_dir() else source.parent) / ".cache"

    def id2word(self) -> list[str]:
        self.setup()
        return [self.dictionary[i] for i in range(len(self.dictionary))]
