"""Defaults that depend on the model or the data, merged under what the configuration sets (so
config.yaml records the values used)."""

from __future__ import annotations

from nnrecipe.config.kinds import is_caption_run, is_sequence_run, is_tagging_run
from nnrecipe.config.sections import Config


def merge(base: dict, extra: dict) -> dict:
    """Recursive dict merge; values in `extra` win."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# Defaults that depend on the model or data, applied where the configuration does not set the key
# (so config.yaml records the values used). Measured on digits (README Results): a ViT on 8×8 images
# trains to 0.97 without augmentation/dropout and with N(0, 0.02²) init, to 0.69–0.79 with them.
MODEL_DEFAULTS: dict[str, dict] = {
    "custom": {"init": {"name": "keep"}},  # a user's module keeps its own init unless init.name says otherwise
    "vit": {"model": {"dropout": 0.0}, "augment": {"enabled": False}, "init": {"name": "normal", "std": 0.02}},
    "transformer": {"init": {"name": "normal", "std": 0.02}},  # GPT/BERT/ViT reference init
    "word2vec": {"data": {"source": "w2v:synthetic"}, "train": {"epochs": 5}},  # gensim's 5 epochs
    # generative models: plain Adam without clipping (Kingma & Welling; DCGAN's lr 2e-4, β₁ = 0.5)
    "autoencoder": {"optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}, "clip": {"name": "none"}},
    "vae": {"optimizer": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}, "clip": {"name": "none"}},
    "gan": {"optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
            "clip": {"name": "none"}, "schedule": {"name": "constant", "warmup": {"fraction": 0.0}},
            "train": {"epochs": 100}},
    # captioner: Adam-style steps without weight decay or label smoothing, like Xu et al.'s Adam (README Captioning)
    "captioner": {"data": {"source": "cap:digits"}, "train": {"epochs": 20},
                  "optimizer": {"lr": 3e-3, "weight_decay": 0.0}, "regularization": {"label_smoothing": 0.0}},
}
SEQUENCE_EPOCHS = 15  # sequence runs on CSVs
TASK_DEFAULTS: dict[str, dict] = {  # per generated task; what they reach is in README Results
    "reverse": {"train": {"epochs": 15}},
    # addition: fresh-looking data beats epochs (8000 sums × 40 epochs memorized: exact match 0.03);
    # digits least-significant first, a bidirectional encoder, torch's layer init and no
    # regularization learned fastest (README Results)
    "addition": {"train": {"epochs": 2, "batch_size": 128},
                 "text": {"task_size": 150000, "reverse_numbers": True},
                 "model": {"bidirectional": True, "dropout": 0.0}, "init": {"name": "torch"},
                 "optimizer": {"lr": 3e-3, "weight_decay": 0.0}, "regularization": {"label_smoothing": 0.0}},
    "memory": {"train": {"epochs": 10}},
    "charlm": {"train": {"epochs": 60}},
}


# sequence tagging: a bidirectional model sees the words after a token too (README Results: seq:tagging);
# data.task records the inferred task in config.yaml
TAGGING_DEFAULTS: dict = {"data": {"task": "tagging"}, "model": {"bidirectional": True}, "train": {"epochs": 10}}
# A transformer tagger must learn where to attend (the trigger word beside a span), not just pool:
# from the N(0, 0.02²) linear layers of the transformer default, q·k starts ≈ 0 and its gradient is
# a product of two small weights, so attention stays uniform (seq:tagging entity F1 0.13–0.15 over
# seeds 0–2 in 10 epochs; auto 0.44, xavier 0.37, torch's U(±1/√n) 0.63 with seed 0). torch's
# init, LR 3e-3 and 20 epochs: README "Sequence tagging".
TAGGING_TRANSFORMER_DEFAULTS: dict = {"init": {"name": "torch"}, "optimizer": {"lr": 3e-3}, "train": {"epochs": 20}}


def with_model_defaults(tree: dict, cfg: Config) -> Config:
    defaults = MODEL_DEFAULTS.get(cfg.model.name, {})
    if is_caption_run(cfg) and "name" not in (tree.get("model") or {}):  # a cap: task names its model
        defaults = merge(MODEL_DEFAULTS["captioner"], {"model": {"name": "captioner"}})
    if is_sequence_run(cfg):
        source = cfg.data.source
        task = TASK_DEFAULTS.get(source[4:], {}) if source.startswith("seq:") else {}
        defaults = merge(merge(defaults, {"train": {"epochs": SEQUENCE_EPOCHS}}), task)
    if is_tagging_run(cfg):
        defaults = merge(defaults, TAGGING_DEFAULTS)
        if cfg.model.name == "transformer":
            defaults = merge(defaults, TAGGING_TRANSFORMER_DEFAULTS)
    return Config.model_validate(merge(defaults, tree)) if defaults else cfg
