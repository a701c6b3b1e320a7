"""Errors of a fine-tuning run that no lower layer (config, data, engine, migrate) raises itself."""
from __future__ import annotations

from migrate.errors import CkptkitError


class FinetuneError(CkptkitError, ValueError):
    """A run that cannot start as asked.  ``report`` (optional) is a report that says where:
    the mapping report of a conversion that did not fit, or the engine's restore report."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report
