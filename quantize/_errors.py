"""Errors of quantization: one line naming the layer, file or signature, exit code 2."""
from __future__ import annotations

from migrate.errors import CkptkitError


class QuantizeError(CkptkitError, ValueError):
    """A model, data set or file quantization cannot use as given (the message names it and says what to do)."""
