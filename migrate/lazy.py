"""Package front doors that import on first use: ``__getattr__ = lazy_exports(__name__, {"name": ".module"})``."""
from ._lazy import lazy_exports as lazy_exports

__all__ = ["lazy_exports"]
