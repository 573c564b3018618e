"""The user's own ``nn.Module``, named in model.json as ``"package.module:Class"`` plus JSON
constructor keyword arguments, never pickled.

`import_class` resolves the name with `importlib` (the current directory is tried too, as
``python -m`` would, so a model defined in ``./mynets.py`` is found by ``nnrecipe predict`` run
from that folder); `build_custom` calls ``Class(**kwargs)``. Loading a run whose class cannot be
imported is a one-line error that says how to pass an instance instead.
"""

from __future__ import annotations

import importlib
import os
import sys

from torch import nn

from nnrecipe.errors import UserError


def class_path_of(model: nn.Module) -> str:
    """``"module:QualName"`` of an instance's class (what model.json records)."""
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name.split(".")[0] or os.getcwd() in sys.path:
            raise
    sys.path.insert(0, os.getcwd())  # the folder the command runs in, as `python -m` does
    return importlib.import_module(name)


def import_class(path: str, *, where: str = "model.class_path") -> type:
    module_name, _, qualname = path.partition(":")
    instance = "pass the instance: nnrecipe.load(run_dir, model=MyNet())"
    fix = f"make the module importable (install it, or run from the folder that holds it), or {instance}"
    if module_name == "__main__":
        raise UserError(f"model class '{path}' was defined in a script's __main__", where,
                        f"define the class in a module (mynets.py) and import it, or {instance}")
    try:
        obj = _import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import module '{module_name}' for model class '{path}' ({exc})", where, fix) from None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UserError(f"module '{module_name}' has no '{qualname}'", where, fix)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise UserError(f"'{path}' is not an nn.Module class", where, "name a subclass of torch.nn.Module")
    return obj


def build_custom(spec: dict) -> nn.Module:
    cls = import_class(spec["class"])
    try:
        return cls(**spec.get("kwargs", {}))
    except TypeError as exc:
        raise UserError(f"cannot construct {spec['class']} with kwargs {spec.get('kwargs', {})}: {exc}",
                        "model.kwargs", "pass the constructor's keyword arguments with --model-kwargs '{...}'") from None


BUILDERS = {"custom": build_custom}
