"""Sequence and attention model builders (rnn, lstm, gru, seq2seq, transformer, vit), registered by name.

Each builder takes the ``architecture`` spec dict; optional keys fall back to small defaults
(hidden 128, embed_dim 64, num_layers 1; dim 64, heads 4, depth 4, mlp_ratio 4).
"""

from __future__ import annotations

from torch import nn

from nnrecipe.models.rnn import RecurrentNet
from nnrecipe.models.seq2seq import Seq2Seq
from nnrecipe.models.transformer import TransformerClassifier, TransformerLM, TransformerSeq2Seq
from nnrecipe.models.vit import ViT

TRANSFORMER_KINDS = ("encoder", "decoder", "encoder_decoder")


def _build_recurrent(spec: dict) -> nn.Module:
    return RecurrentNet(cell=spec["name"], out_features=spec["out_features"], vocab_size=spec.get("vocab_size"),
                        input_size=spec.get("input_size"), embed_dim=spec.get("embed_dim", 64),
                        hidden=spec.get("hidden", 128), num_layers=spec.get("num_layers", 1),
                        bidirectional=spec.get("bidirectional", False), dropout=spec.get("dropout", 0.0),
                        pattern=spec.get("pattern", "many_to_one"), out_steps=spec.get("out_steps"),
                        nonlinearity=spec.get("nonlinearity", "tanh"))


def _build_seq2seq(spec: dict) -> nn.Module:
    return Seq2Seq(src_vocab=spec["src_vocab"], tgt_vocab=spec["tgt_vocab"], cell=spec.get("cell", "gru"),
                   attention=spec.get("attention", "additive"), embed_dim=spec.get("embed_dim", 64),
                   hidden=spec.get("hidden", 128), num_layers=spec.get("num_layers", 1),
                   bidirectional=spec.get("bidirectional", False), dropout=spec.get("dropout", 0.0))


def _build_transformer(spec: dict) -> nn.Module:
    kind = spec.get("kind", "encoder")
    common = {"dim": spec.get("dim", 64), "heads": spec.get("heads", 4), "depth": spec.get("depth", 4),
              "mlp_ratio": spec.get("mlp_ratio", 4.0), "dropout": spec.get("dropout", 0.0),
              "positions": spec.get("positions", "sinusoidal"), "max_len": spec.get("max_len", 512)}
    if common["dim"] % common["heads"]:
        raise ValueError(f"transformer dim {common['dim']} must be divisible by heads {common['heads']}")
    if kind == "encoder":
        return TransformerClassifier(out_features=spec["out_features"], vocab_size=spec.get("vocab_size"),
                                     input_size=spec.get("input_size"), pool=spec.get("pool", "mean"), **common)
    if kind == "decoder":
        return TransformerLM(vocab_size=spec["vocab_size"], **common)
    if kind == "encoder_decoder":
        return TransformerSeq2Seq(src_vocab=spec["src_vocab"], tgt_vocab=spec["tgt_vocab"],
                                  decoder_depth=spec.get("decoder_depth"), **common)
    raise ValueError(f"unknown transformer kind '{kind}'; choose one of {', '.join(TRANSFORMER_KINDS)}")


def _build_vit(spec: dict) -> nn.Module:
    return ViT(in_channels=spec["in_channels"], image_size=spec["image_size"], out_features=spec["out_features"],
               patch_size=spec.get("patch_size", 4), dim=spec.get("dim", 64), depth=spec.get("depth", 4),
               heads=spec.get("heads", 4), mlp_ratio=spec.get("mlp_ratio", 4.0), dropout=spec.get("dropout", 0.0))


BUILDERS: dict = {
    "rnn": _build_recurrent,
    "lstm": _build_recurrent,
    "gru": _build_recurrent,
    "seq2seq": _build_seq2seq,
    "transformer": _build_transformer,
    "vit": _build_vit,
}
