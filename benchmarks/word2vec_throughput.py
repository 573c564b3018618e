"""Word2vec training throughput in corpus words/s (in-vocabulary tokens before subsampling, the count
word2vec.c and gensim report), skip-gram and CBOW, on the planted corpus or a text file.

Measured in this one run (no stored numbers). With gensim installed, gensim's Word2Vec is trained on
the same sentences with the same settings and `workers` = --threads, and the ratio
ours/gensim is printed (gensim runs an optimized C loop, so expect a ratio well below 1 on CPU).

    python benchmarks/word2vec_throughput.py [--corpus FILE] [--epochs 1] [--dim 100] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import time

import torch

from nnrecipe.data.corpus import WordVocab, encode_corpus, load_corpus
from nnrecipe.models.word2vec import Word2Vec
from nnrecipe.word_vectors import DEFAULT_LR, SPARSE_FROM, train_word2vec


def ours(sentences, *, sg: int, dim: int, epochs: int, batch_size: int, device: torch.device,
         min_count: int = 5) -> float:
    vocab = WordVocab.build(sentences, min_count=min_count)
    ids, sentence = encode_corpus(sentences, vocab)
    model = Word2Vec(len(vocab), dim, sparse=len(vocab) * dim >= SPARSE_FROM).to(device)
    rows = train_word2vec(model, ids, sentence, torch.tensor(vocab.counts), sg=bool(sg), window=5, negative=5,
                          ns_exponent=0.75, sample=1e-3, lr=DEFAULT_LR[sg], min_lr_factor=1e-4,
                          batch_size=batch_size, epochs=epochs, generator=torch.Generator().manual_seed(0),
                          device=device)
    return epochs * ids.numel() / sum(r["seconds"] for r in rows)


def gensim_words_per_second(sentences, *, sg: int, dim: int, epochs: int, workers: int) -> float | None:
    try:
        from gensim.models import Word2Vec as GensimWord2Vec
    except ImportError:
        return None
    model = GensimWord2Vec(vector_size=dim, window=5, negative=5, min_count=5, sample=1e-3, sg=sg,
                           workers=workers, seed=0)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    words = epochs * sum(model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key)
    return words / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="w2v:synthetic",
                        help="a text file, a folder of .txt files or w2v:synthetic")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while training (word2vec.threads)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sentences, name = load_corpus(args.corpus)
    device = torch.device(args.device)
    print(f"corpus {name}: {sum(map(len, sentences)):,} tokens, {args.threads} threads, device {device}")
    for sg, label in ((1, "skip-gram"), (0, "cbow")):
        # warm-up: the first optimizer build imports torch._dynamo, the allocator grows
        ours(sentences[:200], sg=sg, dim=args.dim, epochs=1, batch_size=args.batch_size, device=device, min_count=1)
        rate = ours(sentences, sg=sg, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, device=device)
        line = f"{label:>9}: {rate:,.0f} words/s"
        reference = gensim_words_per_second(sentences, sg=sg, dim=args.dim, epochs=args.epochs,
                                            workers=args.threads)
        if reference:
            line += f"  gensim {reference:,.0f} words/s  ratio {rate / reference:.2f}"
        print(line)


if __name__ == "__main__":
    main()
