"""Build a target model without drawing the random values a conversion replaces.

Building a target draws every variable's initial value: for keras:VGG16 that is
138 M random numbers, about 2 s of one core, only to be overwritten by the
checkpoint's tensors, or thrown away with a target that does not fit (the
rule set then tries its fallback).  While :meth:`DeferredInit.scope` is open,
a variable created from an initializer starts uninitialized (its memory
reserved but never written, so a discarded target costs no resident memory)
and its initializer is kept; :meth:`DeferredInit.initialize` then draws the
real initial values of the variables no source provides (a new head), so the
model is what a plain build would give wherever the conversion does not write.
Until the written checkpoint is restored into it, the other variables hold
arbitrary values: nothing reads them (the writer streams the source's tensors).
"""
from __future__ import annotations

import contextlib

from ._tf import tensorflow


class DeferredInit:
    """The variables created in :meth:`scope` with their initial values deferred, and their initializers."""

    def __init__(self):
        self._pending: dict[int, tuple[object, object]] = {}  # id(variable) -> (variable, initial value's callable)

    @contextlib.contextmanager
    def scope(self):
        with tensorflow().variable_creator_scope(self._create):
            yield self

    def _create(self, next_creator, **kwargs):
        tf = tensorflow()
        initial, shape, dtype = kwargs.get("initial_value"), kwargs.get("shape"), kwargs.get("dtype")
        if not callable(initial) or shape is None or dtype is None or not tf.TensorShape(shape).is_fully_defined():
            return next_creator(**kwargs)  # a value given outright, or one whose shape only the value tells
        dtype = tf.as_dtype(dtype).base_dtype
        variable = next_creator(**{**kwargs, "initial_value": lambda: tf.raw_ops.Empty(shape=shape, dtype=dtype)})
        self._pending[id(variable)] = (variable, initial)
        return variable

    def initialize(self, provided) -> int:
        """Give every deferred variable except ``provided`` (variables whose values come from elsewhere) its
        initializer's value; return how many were initialized."""
        skip = {id(v) for v in provided} | {id(getattr(v, "_variable", None)) for v in provided}
        drawn = [(variable, initial) for key, (variable, initial) in self._pending.items() if key not in skip]
        self._pending.clear()
        for variable, initial in drawn:
            variable.assign(initial())
        return len(drawn)
