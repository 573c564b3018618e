"""The configuration reference (README "Configuration"), generated from the pydantic sections.

One row per leaf key, in declaration order, nested sections flattened (``schedule.warmup.steps``):
the key, its default as YAML writes it (``null``, ``true``, ``[0.5, 0.75]``), the values it takes
(from the annotation: Literal choices joined by ``|``, ``int``, ``X or null``, a variable-length
tuple as ``list of int``, and the bounds of the Field: ``≥ 0, < 1``), and the field's
``description``. It walks ``model_fields`` rather than pydantic's JSON schema, which moves nested
sections into ``$defs`` references and spells a union as an ``anyOf`` list: reading those back into
these short cells would take its own interpreter.
The README holds the table between `START` and `END`; `replace_reference` rewrites that block,
and ``nnrecipe config --reference README.md`` calls it.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from nnrecipe.config.sections import Config
from nnrecipe.errors import UserError

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
REGENERATE = "nnrecipe config --reference README.md"
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))  # the attributes of annotated_types' Gt, Ge, …


@dataclass(frozen=True)
class Row:
    key: str
    default: str
    values: str
    meaning: str


def yaml_value(value: Any) -> str:
    """A default as config.yaml shows it: ``null``, ``true``, ``1e-08``, ``[256, 128]``, ``{}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value) if isinstance(value, str) else repr(value)


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(yaml_value(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if annotation is dict or origin is dict:
        return "JSON object"
    return annotation.__name__


def bounds(field: FieldInfo) -> str:
    """The Field's range, e.g. ``> 0, ≤ 1`` (empty when unbounded)."""
    found = [f"{symbol} {getattr(m, attr):g}" for attr, symbol in _BOUNDS
             for m in field.metadata if getattr(m, attr, None) is not None]
    return ", ".join(found)


def values(field: FieldInfo) -> str:
    """What a key takes: ``float > 0, < 1``, ``int ≥ 1 or null``, ``auto | none | batch``, ``list of int``."""
    annotation = field.annotation
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    given = [m for m in members if m is not type(None)]
    text = " or ".join(_type_name(m) for m in given)
    text = f"{text} {bounds(field)}".rstrip()
    return f"{text} or null" if len(given) < len(members) else text


def _is_section(field: FieldInfo) -> bool:
    return isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)


def reference_rows(model: type[BaseModel] = Config, prefix: str = "") -> list[Row]:
    """Every leaf key of `model`, nested sections flattened, in declaration order."""
    rows: list[Row] = []
    for name, field in model.model_fields.items():
        if _is_section(field):
            rows += reference_rows(field.annotation, f"{prefix}{name}.")
        else:
            rows.append(Row(key=prefix + name, default=yaml_value(field.get_default(call_default_factory=True)),
                            values=values(field), meaning=field.description or ""))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_table(model: type[BaseModel] = Config) -> str:
    """The markdown table ``| key | default | values | meaning |``, one row per `reference_rows` entry."""
    lines = ["| key | default | values | meaning |", "|---|---|---|---|"]
    lines += [f"| `{r.key}` | `{_cell(r.default)}` | {_cell(r.values)} | {_cell(r.meaning)} |"
              for r in reference_rows(model)]
    return "\n".join(lines) + "\n"


def reference_block(text: str, *, where: str = "text") -> str:
    """What `text` (a README) holds between the START and END markers."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise UserError(f"no configuration reference block ({START} … {END})", where,
                        "put the two marker lines, in that order, where the table belongs")
    return text[start + len(START):end].strip("\n") + "\n"


def replace_reference(text: str, *, where: str = "text", model: type[BaseModel] = Config) -> str:
    """`text` with its block between the markers replaced by `reference_table` (idempotent)."""
    reference_block(text, where=where)  # refuses a text without the markers
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{START}\n{reference_table(model)}{END}{tail}"
