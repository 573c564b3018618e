"""Token sequences: text classification, language models and seq2seq (`nnrecipe.sequence_model` has the
architectures, forward functions and metrics; `nnrecipe.sequence_data` the tokenization and splits).

What is particular to this family: vocabularies built on the training split and saved in
model.json, pad id 0 ignored by the loss and the metrics, a forward per kind (seq2seq's teacher
forcing, truncated backpropagation through time for recurrent language models), under torchrun
each process's gradient weighted by its share of the batch's target tokens, and the metrics of
the kind (calibrated accuracy; perplexity and a sample; exact match and BLEU).
"""

from __future__ import annotations

import torch

from nnrecipe.config import Config, resolve_config
from nnrecipe.data import PAD
from nnrecipe.errors import UserError
from nnrecipe.evaluation import calibrate, classification_split
from nnrecipe.prepare import Provided
from nnrecipe.sequence_data import SeqPrepared, resolve_text, to_device
from nnrecipe.sequence_model import RECURRENT, grad_profile, model_name, lm_split, make_forward, seq2seq_split, sequence_architecture
from nnrecipe.sequence_decoding import sample_text
from nnrecipe.sequence_inference import evaluate_sequences, predict_sequences
from nnrecipe.tasks.base import Evaluated, Fitted, Loop, Member, Task
from nnrecipe.tasks.text_augmentation import prepare_augmented, text_augmenter
from nnrecipe.training.buckets import LengthBuckets
from nnrecipe.training.distributed import world_size_from_env
from nnrecipe.training.setup import make_model


def classifier_defaults(cfg: Config, kind: str) -> dict:
    """Recurrent text classifiers read both ways with chrono gate biases (Tallec & Ollivier 2018,
    T_max = the input length) unless the configuration says otherwise: measured on generated
    long-range CSVs nobody tuned for (README "Text defaults", `benchmarks/text_defaults.py`), where
    the plain forward LSTM with forget bias 1 falls to chance once the label sits 400 words back."""
    if kind != "classify" or model_name(cfg, kind) not in RECURRENT:
        return {}
    defaults: dict = {}
    if "bidirectional" not in cfg.model.model_fields_set:
        defaults["model"] = {"bidirectional": True}
    if "gate_bias" not in cfg.init.model_fields_set:
        defaults["init"] = {"gate_bias": "chrono"}
    return defaults


class SequenceData:
    def __init__(self, prepared: SeqPrepared, tensors: dict, synonyms=None, augmentation: dict | None = None):
        self.prepared, self.tensors, self.name = prepared, tensors, prepared.name
        self.synonyms, self.augmentation = synonyms, augmentation  # EDA (`tasks.text_augmentation`); None: off


class SequenceTask(Task):
    name = "sequence"
    commands = frozenset({"predict", "evaluate", "compress", "export", "sample", "embed"})
    holds = "sequence model"
    instead = "use predict, evaluate, compress, export (or sample, for a language model; embed, for a classifier)"
    augments_text = True

    def resolve(self, cfg: Config) -> Config:
        kind, text = resolve_text(cfg)
        return resolve_config(file=cfg, extra={"text": text, **classifier_defaults(cfg, kind)})

    def check(self, cfg: Config) -> None:
        if cfg.data.lazy:
            raise UserError(f"data.lazy streams image folders for classifiers; model '{cfg.model.name}' reads its "
                            "data in memory", "data.lazy", "drop --set data.lazy=true")
        if cfg.text.tbptt and world_size_from_env() > 1:
            raise UserError("text.tbptt runs a language model chunk by chunk, which a DDP replica cannot do",
                            "torchrun", "drop text.tbptt, or train on one process")

    def prepare(self, cfg: Config, device: torch.device, provided: Provided) -> SequenceData:
        prepared, synonyms, augmentation = prepare_augmented(cfg)
        return SequenceData(prepared, to_device(prepared.tensors, device), synonyms, augmentation)

    def build(self, cfg: Config, data: SequenceData, member: Member):
        X_train = data.tensors["train"][0]
        first = X_train[0] if isinstance(X_train, tuple) else X_train
        return make_model(cfg, sequence_architecture(cfg, data.prepared), device=member.device,
                          init_batch=first[: cfg.train.batch_size])

    def loop(self, cfg: Config, model, data: SequenceData, member: Member) -> Loop:
        arch = sequence_architecture(cfg, data.prepared)
        X_train, y_train = data.tensors["train"]
        at_init = (grad_profile(model, X_train, y_train)
                   if data.prepared.kind == "classify" and arch["name"] in RECURRENT else None)
        if member.ctx is not None and y_train.dim() == 2:  # token targets: each rank weighs its non-pad tokens
            member.ctx.row_weights = (y_train != PAD).sum(dim=1)
        forward = make_forward(arch, cfg)
        buckets = LengthBuckets(X_train, y_train) if cfg.text.bucketing and data.prepared.kind != "lm" else None
        return Loop(train=(X_train, y_train), val=data.tensors["val"], forward=forward, diagnose="classification",
                    batching=buckets, augment=text_augmenter(cfg, data.synonyms, member.device),
                    extras={"architecture": arch, "forward": forward, "grads_at_init": at_init})

    def evaluate(self, cfg: Config, model, data: SequenceData, fitted: Fitted, member: Member) -> Evaluated:
        d, tensors, arch, forward = data.prepared, data.tensors, fitted.extras["architecture"], fitted.extras["forward"]
        metrics = {"task": "classification", "kind": d.kind, "model": arch["name"], "vocab_size": len(d.src_vocab)}
        if data.augmentation is not None:
            metrics["augment_text"] = data.augmentation
        temperature = 1.0
        if d.kind == "classify":
            calibration = calibrate(model, *tensors["val"], cfg)
            temperature = calibration["temperature"]
            metrics["calibration"] = calibration
            for split in ("test", "val"):
                metrics[split] = classification_split(model, *tensors[split], d.class_names, temperature,
                                                      cfg.calibration.ece_bins)
            if fitted.extras["grads_at_init"] is not None:
                metrics["input_grad_norms"] = {"init": fitted.extras["grads_at_init"],
                                               "trained": grad_profile(model, *tensors["train"])}
        elif d.kind == "lm":
            metrics["test"] = lm_split(model, *tensors["test"], forward)
            metrics["val"] = lm_split(model, *tensors["val"], forward)
            prompt = d.texts["test"].sources[0][:20]
            metrics["sample"] = {"prompt": prompt, "temperature": cfg.text.sample_temperature,
                                 "text": sample_text(model, arch, d.src_vocab, prompt, cfg.text.sample_length,
                                                     temperature=cfg.text.sample_temperature, seed=member.seed)}
        else:
            metrics["test"] = seq2seq_split(model, arch, d, tensors, "test", cfg, forward)
            metrics["val"] = seq2seq_split(model, arch, d, tensors, "val", cfg, forward)
        info = {"task": "classification", "architecture": arch, "sequence": d.info(),
                "class_names": d.class_names, "temperature": temperature, "feature_names": ["text"],
                "target_name": cfg.text.label_column or "label", "data": d.name,
                "decoding": {"beam": cfg.text.beam, "length_penalty": cfg.text.length_penalty,
                             "max_len": cfg.text.max_len}}
        return Evaluated(metrics=metrics, info=info, model=model.cpu().eval())

    def rebuild_splits(self, run, data: str | None) -> dict:
        """{"train"|"val"|"test": (token ids [N, T], class indices)} as `fit` encoded them."""
        if data is not None:
            raise UserError("--data is for tabular and image runs", "--data",
                            "leave it out: a sequence run's budget is measured on its validation split")
        cfg = resolve_config(extra=run.config)
        prepared = prepare_augmented(cfg)[0]  # with EDA, the vocabulary holds the synonyms too
        # the splits and vocabulary are rebuilt from the config; a changed CSV would silently re-map tokens
        if prepared.src_vocab.to_dict() != run.info["sequence"]["src_vocab"] or prepared.class_names != run.class_names:
            raise UserError("the data no longer gives the run's vocabulary or classes", cfg.data.source,
                            "compress with the data the run was fitted on")
        return {k: prepared.tensors[k] for k in ("train", "val", "test")}

    def predict(self, run, source: str) -> str:
        return predict_sequences(run, source)

    def evaluate_source(self, run, source: str) -> dict:
        return evaluate_sequences(run, source)
