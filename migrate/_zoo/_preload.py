"""Imported by the zoo's fork server when a run converts into models: the workers forked from it start with
TensorFlow's modules loaded, imported once for the run instead of once per worker (3.5 s of CPU each).  With
one thread per worker the import starts no thread, so the server forks safely; TensorFlow's own pools start
in each worker, sized by the environment the server inherited (``_threads``)."""
from .._tf import import_tensorflow

import_tensorflow()
