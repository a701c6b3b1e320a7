"""Target models for conversion: ``keras:NAME`` or ``module:pkg.mod:builder``."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .errors import CkptkitError


class TargetError(CkptkitError, ValueError):
    """A target that cannot be built."""


@dataclass(frozen=True)
class TargetSpec:
    """What to build: the spec string and the options users pass on the command line."""

    spec: str
    classes: int | None = None
    include_top: bool | None = None  # None: the builder's default
    input_size: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TargetWeight:
    name: str  # "<layer>/<weight>", nested models prefixed with "<model>/"
    shape: tuple[int, ...]
    dtype: str
    variable: object


def build(target: TargetSpec):
    """Build the target model with fresh (random) weights and deterministic layer names."""
    from ._tf import tf_keras  # noqa: PLC0415

    tf_keras().backend.reset_uids()  # auto-numbered names (conv2d_N) restart at every build
    kind, _, rest = target.spec.partition(":")
    if kind == "keras":
        return _keras_application(rest, target)
    if kind == "module":
        return _module_builder(rest, target)
    raise TargetError(f"target {target.spec!r}: expected keras:NAME (e.g. keras:MobileNetV2) or module:pkg.mod:builder")


def _keras_application(name: str, target: TargetSpec):
    from ._tf import tf_keras  # noqa: PLC0415

    applications = tf_keras().applications
    builder = getattr(applications, name, None)
    if not callable(builder):
        known = sorted(n for n in dir(applications) if n[:1].isupper() and callable(getattr(applications, n)))
        raise TargetError(f"target keras:{name}: no such tf_keras application; known: {', '.join(known)}")
    kwargs = {"weights": None, **target.extra}
    if target.include_top is not None:
        kwargs["include_top"] = target.include_top
    if target.classes is not None:
        kwargs["classes"] = target.classes
    if target.input_size:
        kwargs["input_shape"] = (target.input_size, target.input_size, 3)
    try:
        return builder(**kwargs)
    except (ValueError, TypeError) as e:
        raise TargetError(f"target keras:{name}: cannot build with {kwargs}: {e}") from e


def _module_builder(rest: str, target: TargetSpec):
    module_name, _, attr = rest.rpartition(":")
    if not module_name or not attr:
        raise TargetError(f"target module:{rest}: expected module:pkg.mod:builder")
    try:
        builder = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise TargetError(f"target module:{rest}: {e}") from e
    kwargs = dict(target.extra)
    if target.classes is not None:
        kwargs["num_classes"] = target.classes
    if target.include_top is not None:
        kwargs["include_top"] = target.include_top
    if target.input_size:
        kwargs["input_shape"] = (target.input_size, target.input_size, 3)
    return builder(**kwargs)


def weights(model, prefix: str = "") -> dict[str, TargetWeight]:
    """Every weight of ``model`` by ``layer/weight`` name, nested models included."""
    found: dict[str, TargetWeight] = {}
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights:  # a nested model: recurse with its name
            found.update(weights(layer, f"{prefix}{layer.name}/"))
            continue
        for variable in layer.weights:
            short = variable.name.split("/")[-1].split(":")[0]
            name = f"{prefix}{layer.name}/{short}"
            if name in found:
                raise TargetError(f"target has two weights named {name}; give its layers unique names")
            found[name] = TargetWeight(name, tuple(variable.shape), variable.dtype.name, variable)
    return found
