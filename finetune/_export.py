"""``export``: the OD API exporter's contract (``exporter_main_v2.py``) for a fine-tuned run or a checkpoint.

``OUT/saved_model`` has ``serving_default`` for one input type
(:data:`finetune._serving.SERVING_INPUT_TYPES`), ``OUT/checkpoint/ckpt-0``
the model alone in the layout checkpoints have (the TF2 OD API's, for the
SSD), ``OUT/pipeline.config`` the config it was built from (relative paths
made absolute, so they still name the same files): the layout OD
API users hand to serving and to the TFLite tools.  Before ``OUT`` appears,
the SavedModel is reloaded and must give the exported model's outputs on a
few images.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from migrate.staging import Staging, output_errors
from reports import ExportReport

from . import _model, _run, _settings
from ._configure import configure, set_by_flags
from ._errors import FinetuneError
from ._serving import SERVING_INPUT_TYPES, classification_serving, detector_serving
from ._validate import problem_lines, substitution_errors, support_findings

SIGNATURE = "serving_default"
CHECK_IMAGES = 3
# string settings holding paths: relative ones are made absolute in the written pipeline.config
_PATH_SETTING = re.compile(r'^(\s*(?:label_map_path|input_path|fine_tune_checkpoint)\s*:\s*)"([^"]*)"', re.M)


def export(*, out, trained=None, checkpoint=None, config_path=None, task: str = "detection",
           input_type: str = "image_tensor", overwrite: bool = False, seed: int = 0, **settings) -> ExportReport:
    """Export a fine-tuned run (``trained``: its directory, latest checkpoint) or a ``checkpoint`` prefix (a
    conversion or a TF2 zoo ``checkpoint/ckpt-0``, with ``config_path``) into ``out``."""
    if (trained is None) == (checkpoint is None):
        raise FinetuneError("export: give a fine-tuned run (--trained DIR) or a checkpoint (--checkpoint PREFIX "
                            "with --pipeline-config), one of them")
    if input_type not in SERVING_INPUT_TYPES:
        raise FinetuneError(f"--input-type {input_type!r}: choose one of {', '.join(SERVING_INPUT_TYPES)}")
    if trained is not None:
        settings = _run.recorded_substitutions(trained, settings)
    config = configure(config_path, task=task, training=False, check=False, **settings)
    _refuse_unbuildable(config, task)
    label_map = None if task == "detection" else _label_map(config)
    built = _build(config, task, label_map, seed)
    source, path, step = _restore(built, config, trained, checkpoint)
    serve = _serving(built, config, label_map, input_type)
    out = Path(out)
    with output_errors(out), Staging(out, overwrite=overwrite) as staging:
        _write(staging.tmp, built, serve, config)
        checked = _check(staging.tmp / "saved_model", serve, input_type, _settings.backbone_of(config).image_size)
        staging.commit()
    outputs = tuple(sorted(serve.get_concrete_function().structured_outputs))
    return ExportReport(task, source, path, step, str(out), input_type, outputs,
                        config.source, checked, _warnings(config))


def _refuse_unbuildable(config, task: str) -> None:
    problems = support_findings(config, task) + substitution_errors(config)
    if problems:
        raise FinetuneError(problem_lines(problems, "exporting"))


def _label_map(config):
    from finetune.data import load_label_map  # noqa: PLC0415

    return load_label_map(config.path("train_input_reader.label_map_path"))


def _build(config, task: str, label_map, seed: int):
    from finetune.engine import choose_strategy  # noqa: PLC0415

    with choose_strategy().scope():
        if task == "detection":
            return _model.build_detection(_settings.detector_config(config, []), None, seed)
        return _model.build_classification(_settings.backbone_of(config), label_map, "finetune", total_steps=1,
                                           freeze_batchnorm=config.model.freeze_batchnorm, seed=seed)


def _restore(built, config, trained, checkpoint) -> tuple[str, str, int]:
    """(source, checkpoint restored, step): a run's latest training checkpoint (EMA weights when it kept them),
    or the model alone from a checkpoint prefix."""
    if trained is not None:
        path, step = _run._restore_trained(built, Path(trained), None, _settings.optimizer_config(config, []))  # noqa: SLF001
        return str(trained), path, step
    return str(checkpoint), _run.restore_model(built, checkpoint), 0


def _serving(built, config, label_map, input_type: str):
    backbone = _settings.backbone_of(config)
    size = backbone.image_size
    if label_map is None:  # detection
        return detector_serving(built.detect, size, input_type, backbone.keep_aspect)
    return classification_serving(built.model, label_map.ids, size, input_type)


def _write(tmp: Path, built, serve, config) -> None:
    from finetune.engine import checkpointed  # noqa: PLC0415
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    module = tf.Module()
    module.model = built.model  # tracked: its variables are saved with the signature
    module.serve = serve
    tf.saved_model.save(module, str(tmp / "saved_model"), signatures={SIGNATURE: serve})
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=checkpointed(built)), str(tmp / "checkpoint"),
                                         max_to_keep=1)
    manager.save(checkpoint_number=0)
    if config.source:
        source = Path(config.source)
        (tmp / "pipeline.config").write_text(portable_config(source.read_text(), source.parent))


def portable_config(text: str, base: Path) -> str:
    """``text`` with every relative path setting made absolute against ``base`` (the config's directory), so
    the copy beside the export still names the same files; everything else is kept as written."""
    def absolute(match) -> str:
        value = match[2]
        if not value or "PATH_TO_BE_CONFIGURED" in value or os.path.isabs(value) or "://" in value:
            return match[0]
        return f'{match[1]}"{os.path.normpath(base / value)}"'

    return _PATH_SETTING.sub(absolute, text)


def _check(saved_model: Path, serve, input_type: str, image_size) -> int:
    """Reload the SavedModel and compare its outputs with the in-memory model's on a few images."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    inputs = sample_inputs(input_type, image_size, CHECK_IMAGES)
    loaded = tf.saved_model.load(str(saved_model)).signatures[SIGNATURE]
    want, got = serve(inputs), loaded(input_tensor=inputs)
    for name, value in want.items():
        if not np.allclose(value.numpy(), got[name].numpy(), atol=1e-5):
            raise FinetuneError(f"{saved_model}: the reloaded SavedModel's {name} differs from the exported "
                                "model's; nothing was written (this is a bug)")
    return CHECK_IMAGES


def sample_inputs(input_type: str, image_size, count: int):
    """``count`` fixed images (a seeded pattern at the model's size) as ``input_type`` takes them."""
    from migrate.tf import tensorflow  # noqa: PLC0415

    tf = tensorflow()
    pixels = np.random.default_rng(0).integers(0, 256, (count, *image_size, 3), dtype=np.uint8)
    if input_type == "image_tensor":
        return tf.constant(pixels)
    if input_type == "float_image_tensor":
        return tf.constant(pixels.astype(np.float32))
    encoded = [tf.io.encode_png(image).numpy() for image in pixels]
    if input_type == "encoded_image_string_tensor":
        return tf.constant(encoded)
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))})).SerializeToString()
        for data in encoded]
    return tf.constant(examples)


def _warnings(config) -> tuple[str, ...]:
    flags = sorted({flag for _, flag in set_by_flags(config)})
    out = []
    if not config.source:
        out.append("no pipeline.config: every setting came from flags, so none was written beside the model")
    elif flags:
        out.append(f"pipeline.config is the file as given; these flags changed settings in it: {', '.join(flags)}")
    return tuple(out)
