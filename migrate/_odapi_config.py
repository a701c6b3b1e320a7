"""The TF2 pipeline.config that builds the detector a converted TF1 OD API SSD checkpoint holds.

The TF1 config beside the checkpoint (a zoo tarball's ``pipeline.config``) is
carried over field for field, with what TF2 needs changed and every change
listed: the ``_keras`` feature extractor, the model fields the checkpoint's
shapes decide (an unset field the TF2 default would get wrong is set; a set
one that contradicts the shapes is an error naming both facts), the
fine-tune fields (``fine_tune_checkpoint`` at the converted prefix,
``fine_tune_checkpoint_version: V2``, ``fine_tune_checkpoint_type``) and the
TF1 fields with no TF2 meaning (``from_detection_checkpoint``,
``load_all_detection_checkpoint_vars``), removed.  No TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .textproto import Message, TextProtoError, find, format_text, parse_file, parse_text, replace

CONFIG_NAME = "pipeline.config"
BASE_CONFIG = "odapi_ssd_base.config"  # in migrate/rules: the OD API sample's values, model fields left out
SSD = "model.ssd"
PREDICTOR = "model.ssd.box_predictor.convolutional_box_predictor"
ANCHORS = "model.ssd.anchor_generator.ssd_anchor_generator"
# TF1 train_config fields the TF2 loader has no use for: name -> why
TF1_ONLY = {
    "from_detection_checkpoint": "deprecated in TF1; TF2 reads fine_tune_checkpoint_type",
    "load_all_detection_checkpoint_vars": "TF2 restores by fine_tune_checkpoint_type, not by variable names",
}


@dataclass(frozen=True)
class ConfigTranslation:
    """The written config's text, what was changed (``path: before -> after (why)``) and the contradictions."""

    source: str  # the TF1 config read, "" when none was beside the checkpoint
    text: str
    changes: tuple[str, ...]
    errors: tuple[str, ...]


def beside(checkpoint_prefix: str | Path) -> Path | None:
    """The ``pipeline.config`` next to a checkpoint prefix (the zoo tarball layout), if there is one."""
    candidate = Path(checkpoint_prefix).parent / CONFIG_NAME
    return candidate if candidate.is_file() else None


def translate(config_path: Path | None, fields: dict, fine_tune_checkpoint: str, checkpoint_type: str,
              num_classes: int | None = None) -> ConfigTranslation:
    """The TF1 config at ``config_path`` as the TF2 config of the converted detector (see the module doc);
    without one, ckptkit's base config (the OD API sample's values) completed from the checkpoint."""
    if config_path is None:
        base = resources.files("migrate.rules").joinpath(BASE_CONFIG)
        message = parse_text(base.read_text(encoding="utf-8"), BASE_CONFIG)
        config_path = Path(BASE_CONFIG)
    else:
        try:
            message = parse_file(config_path)
        except TextProtoError as e:
            raise TextProtoError(f"{e}; fix the TF1 pipeline.config beside the checkpoint, or move it away to have "
                                 "the TF2 config made from the checkpoint") from e
    if message.first("model") is None or find(message, SSD) is None:
        return ConfigTranslation(str(config_path), "", (), (f"{config_path}: no model.ssd block; the checkpoint is "
                                                           "an SSD, so this config does not describe it",))
    edit = _Editor(message, str(config_path))
    kind = _value(edit.message, f"{SSD}.feature_extractor.type", "")
    if not kind.endswith("_keras"):
        edit.set(f"{SSD}.feature_extractor.type", fields["feature_extractor"], "TF2 builds the Keras extractor")
    edit.model_field(f"{SSD}.feature_extractor.depth_multiplier", fields["depth_multiplier"], 1.0,
                     "the backbone's depths")
    edit.model_field(f"{SSD}.feature_extractor.use_depthwise", fields["use_depthwise"], False,
                     "the checkpoint's extra layers are " + ("depthwise" if fields["use_depthwise"] else "full convs"))
    edit.model_field(f"{PREDICTOR}.kernel_size", fields["box_predictor_kernel_size"], 1,
                     "the checkpoint's box predictor kernels")
    edit.model_field(f"{PREDICTOR}.use_depthwise", fields["box_predictor_depthwise"], False,
                     "the checkpoint's box predictor " + ("is" if fields["box_predictor_depthwise"] else "is not")
                     + " SSDLite's depthwise head")
    _check_anchors(edit, fields["anchors_per_location"])
    if num_classes is not None and num_classes != fields["num_classes"]:
        edit.set(f"{SSD}.num_classes", num_classes, f"--classes {num_classes} (the box predictor is re-headed)")
    else:
        edit.model_field(f"{SSD}.num_classes", fields["num_classes"], None, "the class predictor's width")
    _fine_tune_fields(edit, fine_tune_checkpoint, checkpoint_type)
    origin = str(config_path) if config_path.name != BASE_CONFIG else \
        "the checkpoint's shapes and the OD API sample's other values (no pipeline.config beside the checkpoint)"
    header = (f"# TF2 Object Detection API config written by ckpt-migrate convert from {origin}; "
              f"{len(edit.changes)} changes listed in conversion.md\n")
    source = "" if config_path.name == BASE_CONFIG else str(config_path)
    return ConfigTranslation(source, header + format_text(edit.message), tuple(edit.changes), tuple(edit.errors))


def _fine_tune_fields(edit: "_Editor", prefix: str, checkpoint_type: str) -> None:
    train = "train_config"
    for name, why in TF1_ONLY.items():
        if find(edit.message, f"{train}.{name}") is not None:
            edit.set(f"{train}.{name}", None, why)
    edit.set(f"{train}.fine_tune_checkpoint", prefix, "the converted checkpoint")
    edit.set(f"{train}.fine_tune_checkpoint_version", "@V2", "object-based; TF2 rejects V1")
    edit.set(f"{train}.fine_tune_checkpoint_type", checkpoint_type, "what the converted checkpoint holds")


def model_fields(message: Message) -> dict:
    """What a TF2 config says of the fields :func:`migrate._odapi.ssd_fields` reads off a checkpoint (proto
    defaults where unset): the config builds the checkpoint's model when the two agree."""
    return {
        "feature_extractor": _value(message, f"{SSD}.feature_extractor.type", ""),
        "depth_multiplier": float(_value(message, f"{SSD}.feature_extractor.depth_multiplier", 1.0)),
        "use_depthwise": bool(_value(message, f"{SSD}.feature_extractor.use_depthwise", False)),
        "box_predictor_kernel_size": int(_value(message, f"{PREDICTOR}.kernel_size", 1)),
        "box_predictor_depthwise": bool(_value(message, f"{PREDICTOR}.use_depthwise", False)),
        "anchors_per_location": _anchors_per_location(message),
        "num_classes": int(_value(message, f"{SSD}.num_classes", 0)),
    }


def _anchors_per_location(message: Message) -> list[int] | None:
    """Anchors per location the ssd_anchor_generator gives each feature map (None without one)."""
    generator = find(message, ANCHORS)
    if generator is None:
        return None
    layers = int(_value(message, f"{ANCHORS}.num_layers", 6))
    ratios = len(generator.value.get("aspect_ratios")) or 1
    interpolated = float(_value(message, f"{ANCHORS}.interpolated_scale_aspect_ratio", 1.0)) > 0
    counts = [ratios + interpolated] * layers
    if bool(_value(message, f"{ANCHORS}.reduce_boxes_in_lowest_layer", True)) and layers:
        counts[0] = 3
    return counts


def _check_anchors(edit: "_Editor", per_location: list[int]) -> None:
    """Anchors per location the ssd_anchor_generator gives, against the box predictor's widths."""
    counts = _anchors_per_location(edit.message)
    if counts is not None and counts != list(per_location):
        edit.errors.append(f"{edit.path}: {ANCHORS} gives {counts} anchors per location, but the checkpoint's box "
                           f"predictors are sized for {list(per_location)}; fix the anchor generator to match "
                           "the checkpoint")


class _Editor:
    """Edits of the parsed config, each recorded as a change, and the contradictions found on the way."""

    def __init__(self, message: Message, path: str):
        self.message, self.path = message, path
        self.changes: list[str] = []
        self.errors: list[str] = []

    def set(self, path: str, value, why: str) -> None:
        before = find(self.message, path)
        before_text = "unset" if before is None else _text(before.value)
        after_text = "removed" if value is None else _plain(value).lstrip("@")
        self.message = replace(self.message, path, value)
        self.changes.append(f"{path}: {before_text} -> {after_text} ({why})")

    def model_field(self, path: str, truth, default, why: str) -> None:
        """A field the checkpoint's shapes decide: written out when unset (saying when the TF2 default would
        have built another model); an error when set to something else (the config and the checkpoint
        describe different models)."""
        found = find(self.message, path)
        if found is None:
            wrong = default is not None and truth != default
            self.set(path, truth, why + (f"; the TF2 default {_plain(default)} would build another model"
                                         if wrong else ""))
            return
        if _same(found.value.value, truth):
            return
        self.errors.append(f"{self.path}:{found.line}:{found.col}: {path} is {_text(found.value)}, but {why} say "
                           f"{_plain(truth)}; the config and the checkpoint describe different models: fix the config "
                           "or convert the checkpoint it describes")
        self.message = replace(self.message, path, truth)  # the written config builds what the checkpoint holds


def _value(message: Message, path: str, default):
    field = find(message, path)
    if field is None:
        return default
    value = field.value.value
    return {"true": True, "false": False}.get(value, value) if field.value.kind == "identifier" else value


def _same(found, truth) -> bool:
    if isinstance(truth, bool):
        return str(found).lower() == str(truth).lower()
    try:
        return float(found) == float(truth)
    except (TypeError, ValueError):
        return found == truth


def _text(value) -> str:
    return getattr(value, "text", None) or str(getattr(value, "value", value))


def _plain(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
