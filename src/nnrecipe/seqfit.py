"""`fit` for token sequences: seqdata → model → the same Trainer → sequence metrics → run directory.

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

import time

import torch
import torch.nn.functional as F

from nnrecipe.config import Config, config_to_dict
from nnrecipe.data import BOS, EOS, PAD
from nnrecipe.errors import TrainingDiverged, UserError
from nnrecipe.evaluation import calibrate, classification_split
from nnrecipe.metrics import bleu, exact_match, perplexity, token_accuracy
from nnrecipe.models.rnn import RecurrentNet, detach_state, early_step_grad_norms
from nnrecipe.recipe.diagnosis import diagnose_history
from nnrecipe.rundir import RunInProgress, open_checkpointer, require_empty_out, run_dir_name
from nnrecipe.run import Run
from nnrecipe.seqdata import SeqPrepared, prepare_sequences, to_device
from nnrecipe.seqgen import decode_outputs, sample_text
from nnrecipe.training.callbacks import EarlyStopping, History, ProgressBar
from nnrecipe.training.distributed import Distributed, attach as attach_distributed, teardown as teardown_distributed
from nnrecipe.training.loop import predict_logits
from nnrecipe.training.setup import base_lr, make_model, make_trainer, pick_device, seed_everything

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


def _grad_profile(model, X, y) -> dict:
    x, yb = X[:256], y[:256]
    norms = early_step_grad_norms(model, x, yb, F.cross_entropy)
    return {"first_step": norms[0], "last_step": norms[-1], "ratio_first_last": norms[0] / max(norms[-1], 1e-30)}


def fit_sequences(cfg: Config, *, out, progress: bool, resume: bool = False, ctx: Distributed | None = None) -> Run:
    """Train a sequence model and write its run directory; with `resume`, `out` is an interrupted
    run whose last checkpoint is restored (the data is regenerated from the seed, so it is the same).
    With `ctx` (torchrun), every process trains a DDP replica on its slice of each batch, the
    gradient weighted by its share of the batch's target tokens; rank 0 alone writes."""
    started = time.perf_counter()
    main_process = ctx is None or ctx.rank == 0
    if not resume and main_process:
        require_empty_out(out)
    seed = cfg.train.seed
    seed_everything(seed)
    data = prepare_sequences(cfg)
    device = ctx.device if ctx is not None else pick_device(cfg.train.device)
    tensors = to_device(data.tensors, device)
    arch = sequence_architecture(cfg, data)
    X_train, y_train = tensors["train"]
    first = X_train[0] if isinstance(X_train, tuple) else X_train
    model = make_model(cfg, arch, device=device, init_batch=first[: cfg.train.batch_size])
    grads_at_init = (_grad_profile(model, X_train, y_train)
                     if data.kind == "classify" and arch["name"] in RECURRENT else None)
    history = History()
    callbacks = [history, EarlyStopping(patience=cfg.train.patience, min_delta=cfg.train.min_delta)]
    if progress and main_process:
        callbacks.append(ProgressBar(cfg.train.epochs, description=f"fit {data.name}"))
    forward = make_forward(arch, cfg)
    # per process: ceil(n/W) rows, so the schedule counts the global batches
    rows = -(-len(y_train) // ctx.world_size) if ctx is not None else len(y_train)
    trainer = make_trainer(cfg, model, task="classification", train_rows=rows, callbacks=callbacks,
                           forward=forward)
    generator = torch.Generator().manual_seed(seed)
    final = run_dir_name(out, cfg, data.name)
    final = ctx.broadcast_object(final) if ctx is not None else final  # rank 0's time-stamped name
    with RunInProgress(final, cfg, resume=resume) as live:  # created (or taken over) when training starts
        run, history_rows, diverged = _train(cfg, data, tensors, model, arch, trainer, forward, generator,
                                             live if main_process else None, ctx, started=started,
                                             grads_at_init=grads_at_init)
        run.dir = live.finish(run, history_rows) if main_process else final
    teardown_distributed(ctx)  # every rank waits until rank 0 has committed the run
    if diverged is not None:
        diverged.run_dir = run.dir
        raise diverged
    return run


def _train(cfg: Config, data: SeqPrepared, tensors: dict, model, arch: dict, trainer, forward, generator,
           live: RunInProgress | None, ctx: Distributed | None, *, started: float, grads_at_init: dict | None):
    """Checkpointed training, then the task's metrics → (Run without dir, history rows, divergence).
    `live` is None on the ranks > 0 of a torchrun job, which neither checkpoint nor evaluate."""
    (X_train, y_train), (X_val, y_val) = tensors["train"], tensors["val"]
    history, seed = trainer.callbacks[0], cfg.train.seed
    checkpointer = open_checkpointer(cfg, live) if live is not None else None
    if checkpointer is not None:
        trainer.callbacks.append(checkpointer)
    if ctx is not None:
        if y_train.dim() == 2:  # token targets: weight each rank by its share of the non-pad tokens
            ctx.row_weights = (y_train != PAD).sum(dim=1)
        attach_distributed(trainer, ctx, checkpointer, checkpoint_every_steps=cfg.train.checkpoint_every_steps)
    diverged = None
    try:
        logs = trainer.fit(X_train, y_train, X_val, y_val, epochs=cfg.train.epochs,
                           batch_size=cfg.train.batch_size, generator=generator)
    except TrainingDiverged as exc:
        diverged, logs = exc, {"epochs_run": exc.epoch, "best_epoch": trainer.callbacks[1].best_epoch}
    train_seconds = time.perf_counter() - started + (checkpointer.elapsed_before if checkpointer else 0.0)
    model.eval()
    if live is None:  # another rank writes the run
        return Run(dir=None, model=model, info={}, metrics={}, config=config_to_dict(cfg)), history.rows, diverged
    metrics = {"task": "classification", "kind": data.kind, "model": arch["name"],
               "epochs_run": logs["epochs_run"], "best_epoch": logs.get("best_epoch", 0),
               "train_seconds": train_seconds, "seed": seed, "lr": base_lr(cfg),
               "status": "ok" if diverged is None else f"diverged: {diverged}",
               "diagnosis": diagnose_history(history.rows, task="classification"),
               "vocab_size": len(data.src_vocab)}
    temperature = 1.0
    if data.kind == "classify":
        calibration = calibrate(model, X_val, y_val, cfg)
        temperature = calibration["temperature"]
        metrics["calibration"] = calibration
        for split in ("test", "val"):
            metrics[split] = classification_split(model, *tensors[split], data.class_names, temperature,
                                                  cfg.calibration.ece_bins)
        if grads_at_init is not None:
            metrics["input_grad_norms"] = {"init": grads_at_init,
                                           "trained": _grad_profile(model, X_train, y_train)}
    elif data.kind == "lm":
        metrics["test"] = lm_split(model, *tensors["test"], forward)
        metrics["val"] = lm_split(model, X_val, y_val, forward)
        prompt = data.texts["test"].sources[0][:20]
        metrics["sample"] = {"prompt": prompt, "temperature": cfg.text.sample_temperature,
                             "text": sample_text(model, arch, data.src_vocab, prompt, cfg.text.sample_length,
                                                 temperature=cfg.text.sample_temperature, seed=seed)}
    else:
        metrics["test"] = seq2seq_split(model, arch, data, tensors, "test", cfg, forward)
        metrics["val"] = seq2seq_split(model, arch, data, tensors, "val", cfg, forward)
    info = {"task": "classification", "architecture": arch, "sequence": data.info(),
            "class_names": data.class_names, "temperature": temperature, "feature_names": ["text"],
            "target_name": cfg.text.label_column, "data": data.name,
            "decoding": {"beam": cfg.text.beam, "length_penalty": cfg.text.length_penalty,
                         "max_len": cfg.text.max_len}}
    run = Run(dir=None, model=model.cpu().eval(), info=info, metrics=metrics, config=config_to_dict(cfg))
    return run, history.rows, diverged


def lm_split(model, X, y, forward) -> dict:
    logits = predict_logits(model, X, forward=forward)
    return {"perplexity": perplexity(logits, y), "token_accuracy": token_accuracy(logits, y),
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


__all__ = ["BOS", "fit_sequences", "make_forward", "model_name", "sequence_architecture"]
