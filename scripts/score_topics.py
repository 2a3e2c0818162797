"""Score topics from anywhere (BERTopic, OCTIS, MALLET, another paper's release) exactly as our topic models are
scored: NPMI (gensim c_npmi, sliding windows of 10 words), TD and TQ, over all topics and the best half, on the same
corpus, the same preprocessing and the same texts (the lemmatized documents, or ``--texts vocabulary``).

    python scripts/score_topics.py topics.txt --config configs/lda_20ng.yaml [--data.init_args.root ...]

``topics.txt``: one topic per line, its words best first, separated by spaces (a line of ours, ``topic 3  npmi
+0.120  w1 w2 ...``, works too; ``#`` lines are skipped). ``--config`` (with any ``--data.init_args.*``) names the
corpus through the datamodule a topic-model config uses. Words the texts never contain are dropped from their topic
and listed. Prints a markdown table; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cli  # noqa: E402
from lightning_modules.metrics.topics import word_list_scores  # noqa: E402

OURS = re.compile(r"^topic\s+\d+\s+npmi\s+[+-]?[\d.]+\s+")


def read_topics(path: Path) -> list[list[str]]:
    """The word lists of a topics file (see the module docstring)."""
    topics = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        topics.append(OURS.sub("", line).split())
    if not topics:
        raise ValueError(f"{path}: no topic lines (one topic per line, its words separated by spaces)")
    return topics


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("topics", type=Path)
    parser.add_argument("--texts", choices=["lemmatized", "vocabulary"], default="lemmatized")
    parser.add_argument("--npmi_top", type=int, default=10)
    parser.add_argument("--diversity_top", type=int, default=25)
    parser.add_argument("--out", type=Path)
    args, cli_args = parser.parse_known_args(argv)
    from gensim.corpora import Dictionary

    data = cli.main([*cli_args, "--trainer.logger", "false"], run=False).datamodule
    data.prepare_data()
    data.setup("test")
    texts = data.lemmatized_texts if args.texts == "lemmatized" else data.texts
    dictionary = Dictionary(
        texts
    )  # every word of the texts: another model's words need not be in our vocabulary
    topics, dropped = [], set()
    for topic in read_topics(args.topics):
        dropped |= {w for w in topic if w not in dictionary.token2id}
        topics.append([w for w in topic if w in dictionary.token2id])
    scores = word_list_scores(topics, texts, dictionary, args.npmi_top, args.diversity_top)
    names = ("npmi", "td", "tq", "npmi_50", "td_50", "tq_50")
    table = (
        f"{args.topics}: {len(topics)} topics scored on {data.data_dir} ({args.texts} texts, NPMI over the first "
        f"{args.npmi_top} words, TD over {args.diversity_top}; *_50 = the best half of the topics)\n\n"
        "| " + " | ".join(names) + " |\n|" + "---:|" * len(names) + "\n"
        "| " + " | ".join(f"{float(scores[n]):.4f}" for n in names) + " |\n"
    )
    if dropped:
        table += f"\nNot in the texts, dropped: {', '.join(sorted(dropped))}\n"
    print(table)
    if args.out:
        args.out.write_text(table)
    return scores


if __name__ == "__main__":
    main()
