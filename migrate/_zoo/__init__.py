"""Batch conversion of a whole model zoo (internal; ``migrate.run_zoo`` is the entry point)."""
from ._run import run_zoo

__all__ = ["run_zoo"]
