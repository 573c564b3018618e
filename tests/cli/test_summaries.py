"""cli/summaries.py: the console text of `fit` (generative, word2vec), `summary`, `doctor` and
`evaluate --analogies`, from the dicts the library returns. The expected strings are what the
formatters printed before they moved out of the library (generative, word_vectors, models.summary, doctor)."""

from __future__ import annotations

import re

from torch import nn

from nnrecipe.cli.summaries import (format_analogy_accuracy, format_doctor_report, format_generative_fit,
                                    format_model_summary, format_word2vec_fit)
from nnrecipe.models import MLP, summarize

_SCORE = {"inception_score": 1.0, "class_entropy": 2.3, "max_class_entropy": 2.302585}
VAE = {"model": "vae", "epochs_run": 2, "train_seconds": 1.234,
       "test": {"elbo": -42.74, "elbo_at_init": -44.25, "reconstruction": 42.68, "kl": 0.06, "active_units": 0,
                "latent_dim": 4},
       "scores": {"judge": {"model": "cnn", "test_accuracy": 0.614},
                  "generated": {**_SCORE, "frechet_distance": 21.19, "mean_confidence": 0.117},
                  "real": {**_SCORE, "frechet_distance": 0.29, "inception_score": 1.01, "mean_confidence": 0.125},
                  "noise": {**_SCORE, "frechet_distance": 8.06, "mean_confidence": 0.118}},
       "plots": ["reconstructions.png", "samples.png"]}
ANALOGIES = {"file": "q.txt", "overall": {"accuracy": 0.5, "correct": 1, "answered": 2, "skipped": 1},
             "sections": {"gender": {"accuracy": 0.0, "correct": 0, "answered": 1, "skipped": 0},
                          "empty": {"accuracy": None, "correct": 0, "answered": 0, "skipped": 1}}}
W2V = {"architecture": "skip-gram", "vocab_size": 484, "dim": 100, "corpus_words": 90720, "epochs_run": 2,
       "train_seconds": 1.2, "words_per_second": 150081.4, "final_loss": 2.32631, "examples": "positive pairs",
       "analogies": ANALOGIES}


def test_generative_fit_lines_for_vae_autoencoder_and_gan():
    assert format_generative_fit(VAE).splitlines() == [
        "epochs: 2, 1.2 s",
        "test: ELBO -42.74 nats (at init -44.25), reconstruction 42.68, KL 0.06, active units 0/4",
        "judge (cnn, test accuracy 0.614):",
        "  generated FD    21.19  IS 1.00  class entropy 2.30/2.30  confidence 0.117",
        "  real      FD     0.29  IS 1.01  class entropy 2.30/2.30  confidence 0.125",
        "  noise     FD     8.06  IS 1.00  class entropy 2.30/2.30  confidence 0.118",
        "plots: reconstructions.png, samples.png"]
    ae = {"model": "autoencoder", "epochs_run": 1, "train_seconds": 1.1,
          "test": {"reconstruction_bce": 43.14, "reconstruction_mse": 0.16981}, "plots": ["latent.png"]}
    assert format_generative_fit(ae) == ("epochs: 1, 1.1 s\ntest: reconstruction BCE 43.14 nats/image, "
                                         "MSE 0.1698/pixel\nplots: latent.png")
    gan = {"model": "gan", "epochs_run": 3, "train_seconds": 9.87,
           "final": {"d_loss": 1.2, "g_loss": 0.8, "d_real": 0.51, "d_fake": 0.49}, "plots": []}
    assert format_generative_fit(gan) == ("epochs: 3, 9.9 s\nlast epoch: D loss 1.200, G loss 0.800, D(x) 0.510, "
                                          "D(G(z)) 0.490\nplots: ")


def test_analogy_accuracy_overall_then_sections_with_n_a():
    assert format_analogy_accuracy(ANALOGIES).splitlines() == [
        "analogies (q.txt): accuracy 0.5000 (1/2 answered, 1 skipped)",
        "  gender: accuracy 0.0000 (0/1 answered, 0 skipped)",
        "  empty: accuracy n/a (0/0 answered, 1 skipped)"]


def test_word2vec_fit_lines_with_and_without_analogies():
    head = ("word2vec skip-gram: 484 words x 100, 90,720 corpus words x 2 epochs in 1.2 s: 150,081 words/s\n"
            "final loss 2.3263 per positive pair")
    assert format_word2vec_fit(W2V) == head + "\n" + format_analogy_accuracy(ANALOGIES)
    cbow = format_word2vec_fit({**W2V, "architecture": "cbow", "examples": "windows", "analogies": None})
    assert cbow.splitlines()[1:] == ["final loss 2.3263 per window"] and cbow.startswith("word2vec cbow: ")


def _small_conv_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(128, 10))


def test_model_summary_is_an_aligned_table_with_exact_totals():  # moved from tests/models/test_summary.py
    result = summarize(_small_conv_net(), (1, 1, 8, 8))
    text = format_model_summary(result)
    lines = text.splitlines()
    table = [ln for ln in lines[:len(result["layers"]) + 2] if not ln.startswith("-")]
    assert table[0].split() == ["layer", "type", "output", "params", "MACs"]
    starts = {ln.index(t) for ln, t in zip(table, ["type", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"])}
    assert len(starts) == 1  # the type column lines up
    assert len({len(ln) for ln in table}) == 1  # right-aligned numbers end together
    total = result["total_params"]
    assert f"{total:,}" in text and f"{result['total_macs']:,}" in text
    assert re.search(r"MACs per sample: +5,888 \(5\.89 K", text)
    titled = format_model_summary({**result, "model": "cnn", "input_shape": [1, 8, 8]})
    assert titled.splitlines()[0] == "model: cnn  input: 1×8×8"
    mlp = format_model_summary(summarize(MLP(64, 10, hidden=(32,)), (1, 64)))
    assert "body.0" in mlp and "head" in mlp and "2,410" in mlp  # 64·32 + 32 + 32·10 + 10


def test_doctor_report_lines_warn_pruned_trials_last_and_next_command(tmp_path):
    report = {"initial_loss": {"ok": True, "measured": 2.2912, "expected": 2.302585},
              "activations_summary": {"verdict": "collapse", "fix": "match the init to the activation"},
              "overfit_small": {"passed": False, "iterations": 500, "diagnosis": "loss not going down"},
              "lr_find": {"suggested_lr": 0.0085, "weight_decay": 0.05},
              "search": {"trials": [{"number": 0, "lr": 0.0255, "weight_decay": 1e-05, "value": 0.652, "state": "COMPLETE"},
                                    {"number": 1, "lr": 0.00283, "weight_decay": 0.0001, "value": None, "state": "PRUNED"},
                                    {"number": 2, "lr": 0.0085, "weight_decay": 0.0, "value": 0.6482, "state": "COMPLETE"}],
                         "best": {"lr": 0.0085, "weight_decay": 0.0, "value": 0.6482}},
              "diagnosis": {"verdict": "healthy", "advice": "both curves improving"},
              "dir": str(tmp_path / "doc")}
    assert format_doctor_report(report).splitlines() == [
        "ok   1 initial loss: 2.291 vs expected 2.303",
        "WARN 2 activations: collapse (match the init to the activation)",
        "WARN 3 overfit small sample: 500 iterations; loss not going down",
        "ok   4 LR range test: suggested lr 8.50e-03 (with weight decay 0.05)",
        "  trial         lr  weight_decay   val loss  state",
        "      2   8.50e-03             0     0.6482  complete",
        "      0   2.55e-02         1e-05     0.6520  complete",
        "      1   2.83e-03        0.0001          -  pruned",
        "ok   5 coarse search: best lr 8.50e-03, weight_decay 0 (val loss 0.6482, 3 trials)",
        "ok   6 curve diagnosis: healthy: both curves improving",
        f"next: nnrecipe fit --config {tmp_path / 'doc' / 'best.yaml'}"]
    report["curvature"] = {"lambda_max": 40.0, "lambda_max_times_lr": 4.0, "past_edge_of_stability": True,
                           "note": "λmax·η = 4 > 2 at the best lr 0.1"}
    assert format_doctor_report(report).splitlines()[-2] == (
        "WARN 7 sharpness at init: lambda_max 40, x best lr = 4 (λmax·η = 4 > 2 at the best lr 0.1)")
