"""matplotlib's cache in a temporary directory: ckptkit writes nothing outside the outputs it is asked for."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile


def private_matplotlib_cache() -> None:
    """Unless ``MPLCONFIGDIR`` is set or matplotlib is already loaded, point its config and font cache (written
    at import, under ``~/.cache``) at a temporary directory removed at exit.  The report pages import
    matplotlib, and so does Keras 3 wherever it is loaded beside TensorFlow."""
    if "matplotlib" in sys.modules or "MPLCONFIGDIR" in os.environ:
        return
    cache = tempfile.mkdtemp(prefix="ckptkit-matplotlib-")
    os.environ["MPLCONFIGDIR"] = cache
    atexit.register(shutil.rmtree, cache, True)
