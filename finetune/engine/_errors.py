"""Errors the training engine reports to a user (one line each, what / found / how to fix)."""
from __future__ import annotations

from migrate.errors import CkptkitError


class EngineError(CkptkitError):
    """Base class of the engine's errors."""


class EngineConfigError(EngineError, ValueError):
    """A training option that cannot work (unknown name, impossible value, wrong combination)."""


class RestoreError(EngineError, ValueError):
    """A fine-tune checkpoint that does not fit the task's model; ``report`` says where."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class TrainingDivergedError(EngineError, FloatingPointError):
    """The loss became NaN or infinite."""
