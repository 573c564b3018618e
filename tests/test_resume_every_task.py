"""Every task resumes through the one driver: a run interrupted after a mid-run checkpoint (a copy
of the finished run rewound to it, `testutil.rewind`) continues to the very result of the run that
was not interrupted: bit-identical weights, the same metrics apart from timing, the same history.

One case per task of the registry (`nnrecipe.tasks.TASKS`); the test of the registry's coverage
fails when a task is added without a case here."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnrecipe.config import resolve_config
from nnrecipe.driver import fit, resume
from nnrecipe.tasks import TASKS, task_name
from nnrecipe.training.checkpoint import list_checkpoints
from testutil import TINY_SEQ, assert_same_run, rewind, write_csv

STEPS = ["train.checkpoint_every_steps=4", "train.keep_checkpoints=100"]
IMAGES = ["train.batch_size=128", "generative.hidden=[32]", "generative.latent_dim=4", "generative.judge=none",
          "generative.grid=4", "generative.snapshots=2"]
W2V_TIMING = ("train_seconds", "total_seconds", "words_per_second", "examples_per_second")
CASES = {  # task: (data, settings, files compared byte for byte, metrics keys that are timings)
    "tabular": ("digits", ["model.hidden=[16]", "train.epochs=2", *STEPS], ("health.csv", "predictions.csv",
                                                                             "model.json"), ("train_seconds",)),
    "custom": ("digits", ["model.name=custom", "model.class_path=usermodels:FlatMLP", "train.epochs=2", *STEPS],
               ("predictions.csv", "model.json"), ("train_seconds",)),
    # seq2seq with scheduled sampling (global RNG draws) and dropout
    "sequence": ("seq:reverse", [*TINY_SEQ, "train.epochs=2", "model.dropout=0.2", "text.teacher_forcing=0.7",
                                 *STEPS], ("model.json",), ("train_seconds",)),
    "tagging": ("seq:tagging", [*TINY_SEQ, "train.epochs=2", "model.dropout=0.2", *STEPS], ("model.json",),
                ("train_seconds",)),
    "autoencoder": ("digits", ["model.name=vae", "train.epochs=2", *IMAGES, *STEPS], ("model.json",),
                    ("train_seconds",)),
    # checkpoints every 4 of the 9 steps per epoch: the middle one lies in epoch 2, after a snapshot
    "gan": ("digits", ["model.name=gan", "train.epochs=2", *IMAGES, *STEPS], ("model.json",), ("train_seconds",)),
    # dropout and scheduled sampling (global RNG draws), the images gathered by index
    "captioning": ("cap:digits", ["caption.task_size=100", "model.channels=[8,16]", "model.rnn_hidden=16",
                                  "model.embed_dim=8", "caption.attention_dim=8", "train.batch_size=64",
                                  "model.dropout=0.2", "caption.teacher_forcing=0.8", "train.epochs=2",
                                  "caption.samples=1", *STEPS], ("model.json",), ("train_seconds",)),
    "word2vec": ("w2v:synthetic", ["model.name=word2vec", "word2vec.dim=8", "train.epochs=3",
                                   "train.keep_checkpoints=100"], ("model.json", "vectors.txt"), W2V_TIMING),
}


def test_every_task_of_the_registry_has_a_case():
    found = {name: task_name(resolve_config(overrides=[f"data.source={data}", *sets]))
             for name, (data, sets, _, _) in CASES.items()}
    assert found == {name: name for name in CASES} and set(CASES) == set(TASKS)


@pytest.mark.parametrize("name", list(CASES))
def test_an_interrupted_run_resumes_to_the_uninterrupted_one(name, tmp_path):
    data, sets, files, timing = CASES[name]
    ref = fit(data, overrides=sets, out=tmp_path / "ref").dir
    seqs = list_checkpoints(ref / "checkpoints")
    assert len(seqs) >= 3, seqs  # one to resume from, more after it
    middle = seqs[len(seqs) // 2]
    run = resume(rewind(ref, tmp_path / "run", middle))
    assert not (run.dir / "INCOMPLETE").exists()
    assert_same_run(ref, run.dir, files=files, timing=timing)
    assert sorted(p.name for p in (ref / "plots").iterdir()) == sorted(p.name for p in (run.dir / "plots").iterdir())



def test_a_text_run_with_eda_resumes_to_the_uninterrupted_one(tmp_path):
    """EDA draws its augmentations from the checkpointed batch-order generator: a text classifier
    with all four operations, interrupted mid-epoch, resumes bit for bit."""
    words = "good bad fine awful great poor the a day film plot song".split()
    rng = np.random.default_rng(0)
    rows = [[" ".join(rng.choice(words, size=int(rng.integers(2, 9)))), ("pos", "neg")[i % 2]] for i in range(160)]
    data = write_csv(tmp_path / "reviews.csv", ["text", "label"], rows)
    synonyms = tmp_path / "synonyms.txt"
    synonyms.write_text("good fine great\nbad awful poor\nfilm movie\n")
    sets = ["text.level=word", "model.rnn_hidden=16", "model.embed_dim=8", "train.batch_size=16", "train.epochs=2",
            "augment.text.alpha=0.2", f"augment.text.synonyms={synonyms}", *STEPS]
    ref = fit(str(data), model="gru", overrides=sets, out=tmp_path / "ref").dir
    def batches_done(seq: int) -> int:
        return json.loads((ref / "checkpoints" / f"ckpt-{seq:06d}.json").read_text())["state"]["progress"]["batches_done"]

    # 7 steps per epoch, a checkpoint every 4: the last one inside an epoch lies in epoch 2
    middle = [s for s in list_checkpoints(ref / "checkpoints") if batches_done(s) > 0][-1]
    run = resume(rewind(ref, tmp_path / "run", middle))
    assert_same_run(ref, run.dir, files=("model.json",), timing=("train_seconds",))
