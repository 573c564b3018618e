"""Data: load a table, images or text, infer the task, encode labels, split rows, standardize, whiten;
tokenizers and vocabularies; generated sequence tasks (`seq:reverse|addition|memory|charlm`).

Imports nothing from the rest of nnrecipe except `nnrecipe.errors`.
"""

from nnrecipe.data.images import IMAGE_SUFFIXES, image_feature_names
from nnrecipe.data.normalize import ChannelNormalizer
from nnrecipe.data.preprocess import Standardizer, TargetScaler
from nnrecipe.data.sources import BUNDLED, Table, load_table
from nnrecipe.data.seqtasks import SEQ_TASKS, SeqSplit, SeqTask, make_task
from nnrecipe.data.split import split_indices
from nnrecipe.data.task import (
    MAX_FLOAT_CLASSES,
    class_name,
    encode_labels,
    infer_task,
    regression_targets,
)
from nnrecipe.data.text import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    Vocab,
    detokenize,
    load_parallel_csv,
    load_text_csv,
    pad_batch,
    tokenize,
)
from nnrecipe.data.whiten import Whitener, apply_patch_zca, patch_zca_filters

__all__ = [
    "BOS", "EOS", "PAD", "SEQ_TASKS", "SPECIALS", "UNK", "SeqSplit", "SeqTask", "Vocab", "detokenize",
    "load_parallel_csv", "load_text_csv", "make_task", "pad_batch", "tokenize",
    "BUNDLED",
    "IMAGE_SUFFIXES",
    "MAX_FLOAT_CLASSES",
    "ChannelNormalizer",
    "Standardizer",
    "Table",
    "TargetScaler",
    "Whitener",
    "apply_patch_zca",
    "class_name",
    "encode_labels",
    "image_feature_names",
    "infer_task",
    "load_table",
    "patch_zca_filters",
    "regression_targets",
    "split_indices",
]
