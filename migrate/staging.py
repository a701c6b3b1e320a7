"""Atomic outputs: write into a staging directory beside the output, then rename it into place.

Every package that writes a checkpoint, model or export directory goes
through :class:`Staging`; :func:`output_errors` says why an output path cannot
be written before any work starts.
"""
from ._staging import Staging as Staging
from ._staging import output_errors as output_errors

__all__ = ["Staging", "output_errors"]
