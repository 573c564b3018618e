"""Data: load a table, infer the task, encode labels, split rows, standardize.

Imports nothing from the rest of nnrecipe except `nnrecipe.errors`.
"""

from nnrecipe.data.preprocess import Standardizer, TargetScaler
from nnrecipe.data.sources import BUNDLED, Table, load_table
from nnrecipe.data.split import split_indices
from nnrecipe.data.task import (
    MAX_FLOAT_CLASSES,
    class_name,
    encode_labels,
    infer_task,
    regression_targets,
)

__all__ = [
    "BUNDLED",
    "MAX_FLOAT_CLASSES",
    "Standardizer",
    "Table",
    "TargetScaler",
    "class_name",
    "encode_labels",
    "infer_task",
    "load_table",
    "regression_targets",
    "split_indices",
]
