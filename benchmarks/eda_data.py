"""A small-data text classification task in which synonyms matter, for measuring EDA (README
"Text augmentation (EDA)").

Four topics (sports, food, weather, music), each with two concepts, each concept a group of six
synonyms. A sentence holds one word of each concept of its topic, each drawn from the concept's
group with Zipf weights 1/r^1.5 (the first word ~50 % of the time, the last ~5 %), with probability
1/2 one word of another topic (a distractor), and 5–9 neutral words and stopwords, shuffled. With
200 training rows the rarer synonyms occur a few times or never in training; a held-out sentence
that uses them is only recognised through its other words, unless augmentation has taught them.

Writes into OUT: ``topics.csv`` (text,label; 667 rows: with ``data.val_fraction=0.1`` and
``data.test_fraction=0.6``, 200 train / 67 validation / 400 test), ``synonyms.txt`` (one
``word syn1 …`` line per word: its group) and ``unlabelled.txt`` (20 000 sentences of the same
language, every synonym equally likely, one per line: a corpus for a word2vec run whose nearest
neighbours serve as synonyms instead of the file).

    python benchmarks/eda_data.py OUT [--rows 667] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

TOPICS = {
    "sports": (("game", "match", "contest", "fixture", "bout", "tournament"),
               ("team", "squad", "side", "club", "crew", "lineup")),
    "food": (("meal", "dinner", "supper", "feast", "lunch", "banquet"),
             ("tasty", "delicious", "savory", "yummy", "flavorful", "scrumptious")),
    "weather": (("rain", "drizzle", "shower", "downpour", "sleet", "storm"),
                ("cold", "chilly", "freezing", "frosty", "icy", "wintry")),
    "music": (("song", "tune", "melody", "ballad", "anthem", "ditty"),
              ("band", "group", "ensemble", "orchestra", "choir", "quartet")),
}
NEUTRAL = ("yesterday people city said really new week after everyone friends today morning evening town "
           "family local many again long time place night report news weekend quite almost big small old "
           "young near early late busy quiet best first last").split()
STOP = "the a was and of in with for to it".split()


def _zipf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()


def sentence(topic: str, rng: np.random.Generator, *, skew: float) -> str:
    words = [group[rng.choice(len(group), p=_zipf(len(group), skew))] for group in TOPICS[topic]]
    if rng.random() < 0.5:
        other = rng.choice([t for t in TOPICS if t != topic])
        group = TOPICS[other][rng.integers(2)]
        words.append(group[rng.choice(len(group), p=_zipf(len(group), skew))])
    k = rng.integers(5, 10)
    words += [rng.choice(STOP) if rng.random() < 0.4 else rng.choice(NEUTRAL) for _ in range(k)]
    rng.shuffle(words)
    return " ".join(words)


def write(out: Path, *, rows: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    topics = list(TOPICS)
    with (out / "topics.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(rows):
            topic = topics[i % len(topics)]
            writer.writerow([sentence(topic, rng, skew=1.5), topic])
    with (out / "synonyms.txt").open("w", encoding="utf-8") as fh:
        for concepts in TOPICS.values():
            for group in concepts:
                for word in group:
                    fh.write(" ".join([word, *(w for w in group if w != word)]) + "\n")
    with (out / "unlabelled.txt").open("w", encoding="utf-8") as fh:
        for _ in range(20000):
            fh.write(sentence(topics[rng.integers(len(topics))], rng, skew=0.0) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=667)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.out, rows=args.rows, seed=args.seed)


if __name__ == "__main__":
    main()
