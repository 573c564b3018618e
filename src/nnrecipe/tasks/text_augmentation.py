"""EDA for the sequence task (`nnrecipe.data.text_augment` has the operations): where the synonyms
come from, the vocabulary they extend, and the augmenter the Trainer applies to training batches.

Synonyms: ``augment.text.synonyms`` (a file of ``word syn1 syn2 ...`` lines) or
``augment.text.synonyms_from`` (a word2vec run of this package: for every word of the training
vocabulary that the run knows, its ``neighbours`` nearest words by cosine of the target vectors,
those with cos ≥ ``min_similarity``; nothing is downloaded). With ``extend_vocab`` the synonyms of
training words join the vocabulary after the counted words, since augmented rows hold them: a
test word seen only as a synonym then has its own id (and an embedding trained on augmented rows)
instead of ``<unk>``. Only word-level text classification is augmented; anything else is refused
before the run directory exists.
"""

from __future__ import annotations

from nnrecipe.config import Config, augments_text
from nnrecipe.data.text_augment import STOPWORDS, SynonymTable, TextAugmenter, extend_vocab, read_synonyms
from nnrecipe.errors import UserError
from nnrecipe.sequence_data import SeqPrepared, prepare_sequences
from nnrecipe.word_vectors import load_vectors

WHERE = "augment.text"
FIX = "drop augment.text: EDA is for text classification CSVs at text.level=word"


def refuse_text_augmentation(cfg: Config, family: str) -> None:
    """A family that is not text classification with augment.text on: one UserError."""
    if augments_text(cfg):
        raise UserError(f"augment.text augments word-level texts; this is a {family} run", WHERE, FIX)


def load_synonyms(cfg: Config, words: list[str]) -> dict[str, list[str]]:
    """The synonyms of `words` (the training vocabulary) from the file or the word2vec run."""
    a = cfg.augment.text
    if a.synonyms:
        return read_synonyms(a.synonyms)
    if a.synonyms_from:
        vectors = load_vectors(a.synonyms_from)
        return vectors.neighbours(words, top=a.neighbours, min_similarity=a.min_similarity)
    return {}


def prepare_augmented(cfg: Config) -> tuple[SeqPrepared, SynonymTable | None, dict | None]:
    """The splits as `prepare_sequences` encodes them, with the vocabulary extended by the synonyms
    when EDA is on; then the synonym table over that vocabulary and a summary for metrics.json
    (None, None without EDA)."""
    if not augments_text(cfg):
        return prepare_sequences(cfg), None, None
    a, found = cfg.augment.text, {}

    def extend(task, vocab):
        if task.kind != "classify" or task.level != "word":
            what = "character-level" if task.level != "word" else task.kind
            raise UserError(f"augment.text augments word-level texts; this is a {what} sequence task", WHERE, FIX)
        found["synonyms"] = load_synonyms(cfg, vocab.tokens)
        found["counted"] = len(vocab)
        return extend_vocab(vocab, found["synonyms"], max_size=cfg.text.max_vocab) if a.extend_vocab else vocab

    prepared = prepare_sequences(cfg, extend_vocab=extend)
    table = SynonymTable.build(prepared.src_vocab, found["synonyms"],
                               stopwords=STOPWORDS if a.stopwords == "english" else frozenset())
    summary = {"rates": a.rates(), "prob": a.prob, "synonyms": a.synonyms or a.synonyms_from,
               "words_with_synonyms": table.words, "synonym_ids": len(table.flat) - 1,
               "added_to_vocab": len(prepared.src_vocab) - found["counted"]}
    return prepared, table, summary


def text_augmenter(cfg: Config, table: SynonymTable | None, device) -> TextAugmenter | None:
    if table is None:
        return None
    a = cfg.augment.text
    return TextAugmenter(table, a.rates(), prob=a.prob, max_len=cfg.text.max_len).to(device)


__all__ = ["load_synonyms", "prepare_augmented", "refuse_text_augmentation", "text_augmenter"]
