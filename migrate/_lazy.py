"""Package front doors that import on first use: ``__getattr__ = lazy_exports(__name__, {"name": ".module"})``.

The packages that need TensorFlow (finetune, quantize) export their names this
way, so importing the package, its CLI or its report types stays TF-free.
"""
from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, table: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``name`` comes from the module ``table[name]`` (relative to
    ``package`` when it starts with a dot) and is cached in the package's namespace."""

    def __getattr__(name: str):
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
