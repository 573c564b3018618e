"""The sequence family's models, forward functions and split metrics, shared by its task
(`nnrecipe.tasks.sequence`) and by inference on a finished run (`nnrecipe.sequence_inference`).

Model per task (``model.name``; ``mlp``, the tabular default, means lstm for classify/lm and
seq2seq for seq2seq):
- classify: rnn | lstm | gru (many-to-one) or transformer (encoder, mean-pooled) → class logits.
- lm:       rnn | lstm | gru (many-to-many aligned) or transformer (causal decoder) → next token.
- seq2seq:  seq2seq (GRU/LSTM/RNN encoder–decoder with attention; rnn/lstm/gru pick the cell) or
            transformer (encoder–decoder).
Transformers default to the warm-up + inverse-square-root schedule (``schedule.name: auto``).
``train.epochs`` defaults to 15 here unless set (`nnrecipe.config.SEQUENCE_EPOCHS`).

Metrics: classify → the tabular classification metrics (with temperature scaling); lm →
perplexity exp(mean token NLL) and token accuracy on the test windows, plus a sample at
``text.sample_temperature``; seq2seq → exact match, token accuracy (teacher-forced) and corpus
BLEU of the decoded test outputs (greedy, or beam search with ``text.beam > 1``; char-level tasks
score BLEU over characters), an attention heatmap of one test example, and a few examples.
Recurrent classifiers also record ‖∂L/∂x_t‖ at the first and last steps at init and after training
(the vanishing-gradient measurement).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nnrecipe.config import Config
from nnrecipe.data import BOS, EOS
from nnrecipe.errors import UserError
from nnrecipe.metrics import bleu, exact_match, perplexity, token_accuracy
from nnrecipe.models.rnn import RecurrentNet, detach_state, early_step_grad_norms
from nnrecipe.sequence_data import SeqPrepared
from nnrecipe.sequence_decoding import decode_outputs
from nnrecipe.training.loop import predict_logits

RECURRENT = ("rnn", "lstm", "gru")


def model_name(cfg: Config, kind: str) -> str:
    name = cfg.model.name
    if name == "mlp":
        return "seq2seq" if kind == "seq2seq" else "lstm"
    if name in ("cnn", "resnet", "mobilenetv2", "vit"):
        raise UserError(f"model '{name}' takes images, not token sequences", "--model",
                        "use rnn, lstm, gru, seq2seq or transformer")
    if name == "seq2seq" and kind != "seq2seq":
        raise UserError(f"seq2seq needs source/target pairs, this task is '{kind}'", "--model",
                        "use rnn, lstm, gru or transformer")
    return name


def sequence_architecture(cfg: Config, data: SeqPrepared) -> dict:
    m, name = cfg.model, model_name(cfg, data.kind)
    V = len(data.src_vocab)
    if name == "transformer":
        kind = {"classify": "encoder", "lm": "decoder", "seq2seq": "encoder_decoder"}[data.kind]
        spec = {"name": "transformer", "kind": kind, "dim": m.dim, "heads": m.heads, "depth": m.depth,
                "mlp_ratio": m.mlp_ratio, "dropout": m.dropout, "positions": m.positions,
                "max_len": max(cfg.text.max_len, cfg.text.block_size) + 2}
        if kind == "encoder":
            spec.update(vocab_size=V, out_features=len(data.class_names))
        elif kind == "decoder":
            spec.update(vocab_size=V)
        else:
            spec.update(src_vocab=V, tgt_vocab=len(data.tgt_vocab))
        return spec
    rnn = {"embed_dim": m.embed_dim, "hidden": m.rnn_hidden, "num_layers": m.num_layers,
           "dropout": m.dropout if m.num_layers > 1 or data.kind != "lm" else 0.0}
    if data.kind == "seq2seq":
        cell = m.cell if name == "seq2seq" else name
        return {"name": "seq2seq", "src_vocab": V, "tgt_vocab": len(data.tgt_vocab), "cell": cell,
                "attention": m.attention, "bidirectional": m.bidirectional, **rnn}
    if data.kind == "lm":
        return {"name": name, "vocab_size": V, "out_features": V, "pattern": "many_to_many", **rnn}
    return {"name": name, "vocab_size": V, "out_features": len(data.class_names), "pattern": "many_to_one",
            "bidirectional": m.bidirectional, **rnn}


def make_forward(arch: dict, cfg: Config):
    """(model, inputs) → logits for the Trainer: seq2seq models take (src, None, tgt_in); recurrent
    language models may truncate backpropagation every ``text.tbptt`` steps."""
    if arch["name"] == "seq2seq":
        tf = cfg.text.teacher_forcing
        return lambda model, xb: model(xb[0], None, xb[1], teacher_forcing=tf if model.training else 1.0)[0]
    if arch.get("kind") == "encoder_decoder":
        return lambda model, xb: model(xb[0], None, xb[1])
    if cfg.text.tbptt and arch.get("pattern") == "many_to_many":
        k = cfg.text.tbptt

        def tbptt(model: RecurrentNet, x):
            state, outs = None, []
            for s in range(0, x.shape[1], k):  # gradient flows within a chunk; the state carries over
                logits, state = model.forward_with_state(x[:, s:s + k], None, state)
                outs.append(logits)
                state = detach_state(state) if model.training else state
            return torch.cat(outs, dim=1)
        return tbptt
    return lambda model, xb: model(xb)


def grad_profile(model, X, y) -> dict:
    x, yb = X[:256], y[:256]
    norms = early_step_grad_norms(model, x, yb, F.cross_entropy)
    return {"first_step": norms[0], "last_step": norms[-1], "ratio_first_last": norms[0] / max(norms[-1], 1e-30)}


def lm_split(model, X, y, forward) -> dict:
    logits = predict_logits(model, X, forward=forward)
    ppl = perplexity(logits, y)  # bits per token log₂(perplexity): bits per character at char level
    return {"perplexity": ppl, "bits_per_token": math.log2(ppl), "token_accuracy": token_accuracy(logits, y),
            "tokens": int((y != 0).sum())}


def seq2seq_split(model, arch: dict, data: SeqPrepared, tensors: dict, split: str, cfg: Config,
                   forward) -> dict:
    (src, tgt_in), tgt_out = tensors[split]
    logits = predict_logits(model, (src, tgt_in), forward=forward)
    texts = data.texts[split]
    longest = max(len(data.tgt_vocab.encode(t)) for t in texts.targets) + 1
    outputs, attention = decode_outputs(model, arch, src, data.tgt_vocab, max_len=longest + 5,
                                        beam=cfg.text.beam, length_penalty=cfg.text.length_penalty)
    char = data.level == "char"
    spaced = (lambda s: " ".join(s)) if char else (lambda s: s)
    result = {"exact_match": exact_match(outputs, list(texts.targets)),
              "token_accuracy": token_accuracy(logits, tgt_out),
              "bleu": bleu([spaced(o) for o in outputs], [[spaced(t)] for t in texts.targets],
                           tokenize="none" if char else "13a"),
              "bleu_tokens": "characters" if char else "13a words",
              "decoding": "greedy" if cfg.text.beam == 1 else f"beam {cfg.text.beam}",
              "examples": [{"source": s, "output": o, "target": t}
                           for s, o, t in list(zip(texts.sources, outputs, texts.targets))[:5]]}
    if attention is not None:
        src_tokens = [data.src_vocab.tokens[i] for i in src[0].tolist() if i != 0]
        out_ids = data.tgt_vocab.encode(outputs[0]) + [EOS]
        result["attention_example"] = {
            "source": src_tokens, "output": [data.tgt_vocab.tokens[i] for i in out_ids],
            "weights": attention[0, : len(out_ids), : len(src_tokens)].tolist()}
    return result


__all__ = ["BOS", "make_forward", "model_name", "sequence_architecture"]
