"""The float model to quantize and its data: a fine-tuned ``ckpt-finetune`` run, or a saved tf_keras model.

``load_run(model_dir, task=..., **settings)``: the run's model rebuilt from the
pipeline.config / flags it was trained with (the same ones ``ckpt-finetune
eval`` takes), its latest checkpoint restored, every split checked.
``load_keras(path, train_input_path=..., test_input_path=..., label_map_path=...)``:
a tf_keras model saved as ``.h5`` or a SavedModel directory (classification),
with the TFRecord splits given as flags.  Both return a :class:`Source`; the
task factories (:data:`quantize._task.TASKS`) build on it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._errors import QuantizeError


@dataclass(eq=False)
class Source:
    """Where the float model came from and the splits to train, calibrate and evaluate on."""

    kind: str  # "finetune" | "keras"
    path: Path
    task: str  # classification | detection
    model: object  # tf_keras.Model: the trained float model (finetune: the task's model)
    image_size: tuple
    label_map: object = None  # finetune.data.LabelMap
    train: object = None  # finetune.data.InputData (shuffled) or None
    val: object = None
    test: object = None
    finetune_task: object = None  # finetune's task object (ClassificationTask, SSDTask) for a finetune run
    checkpoint: str = ""
    step: int = 0
    warnings: list = field(default_factory=list)

    def calibration_images(self, limit: int):
        """Up to ``limit`` float32 ``[1, H, W, 3]`` training images in epoch-0 order, without the training
        augmentations: calibration should see the images inference sees."""
        data = dataclasses.replace(self.split("train"), augment=())
        count = 0
        for batch in data.dataset_for_epoch(0):
            for image in np.asarray(batch["image"], np.float32):
                if count >= limit:
                    return
                count += 1
                yield image[None]

    def split(self, name: str):
        data = {"train": self.train, "val": self.val, "eval": self.val, "test": self.test}.get(name)
        if data is None:
            raise QuantizeError(f"{self.path}: no {name} split; pass --{'test' if name == 'test' else name}"
                                f"-input-path with its TFRecords")
        return data


def load_run(model_dir, *, task: str = "classification", config_path=None, test_input_path=None,
             skip_bad_records: bool = False, seed: int = 0, mode: str = "finetune", **settings) -> Source:
    """A ``ckpt-finetune`` run: its model at the latest checkpoint, and its splits."""
    from finetune import load_trained  # noqa: PLC0415

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise QuantizeError(f"{model_dir}: no such fine-tuned model directory; train one with ckpt-finetune train")
    settings.setdefault("num_steps", 1)  # the fine-tune's length is not ours; configure() wants one
    run = load_trained(model_dir, task=task, config_path=config_path, test_input_path=test_input_path,
                       skip_bad_records=skip_bad_records, seed=seed, mode=mode, **settings)
    inputs = run.inputs
    return Source("finetune", model_dir, task, run.task.model, tuple(run.backbone.image_size), inputs.label_map,
                  inputs.train, inputs.eval, inputs.test, run.task, run.checkpoint, run.step, run.warnings)


def load_keras(path, *, train_input_path=None, eval_input_path=None, test_input_path=None, label_map_path=None,
               batch_size: int = 32, eval_batch_size: int = 32, seed: int = 0, skip_bad_records: bool = False) -> Source:
    """A saved tf_keras classifier (``.h5`` or SavedModel directory) and its classification TFRecords."""
    from finetune.data import classification_dataset, load_label_map  # noqa: PLC0415

    path = Path(path)
    model = load_keras_model(path)
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise QuantizeError(f"{path}: the model input has shape {shape}; expected images [batch, height, width, "
                            "channels] with a fixed height and width")
    if label_map_path is None:
        raise QuantizeError(f"{path}: a saved model needs --label-map-path (and the TFRecords of its splits)")
    label_map = load_label_map(label_map_path)
    size = (int(shape[1]), int(shape[2]))

    def split(paths, shuffle, batch):
        if not paths:
            return None
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        return classification_dataset([str(p) for p in paths], label_map, batch_size=batch, image_size=size,
                                      shuffle_seed=seed if shuffle else None, skip_bad_records=skip_bad_records)

    return Source("keras", path, "classification", model, size, label_map, split(train_input_path, True, batch_size),
                  split(eval_input_path, False, eval_batch_size), split(test_input_path, False, eval_batch_size))


def load_keras_model(path: Path):
    """A tf_keras model from ``.h5`` / ``.keras`` / a SavedModel directory written by tf_keras."""
    from migrate.tf import tensorflow, tf_keras  # noqa: PLC0415

    tensorflow()
    keras = tf_keras()
    if not path.exists():
        raise QuantizeError(f"{path}: no such model file or SavedModel directory")
    if path.is_dir() and not (path / "saved_model.pb").is_file():
        raise QuantizeError(f"{path}: a directory without saved_model.pb; expected a SavedModel directory or "
                            "an .h5 file")
    if path.is_dir():
        from ._export import check_signature  # noqa: PLC0415

        check_signature(path)
    try:
        from tensorflow_model_optimization.quantization.keras import quantize_scope  # noqa: PLC0415

        with quantize_scope():
            return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError, TypeError, KeyError, ImportError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise QuantizeError(f"{path}: cannot load it as a tf_keras model ({first}); save it with "
                            "model.save() from tf_keras") from None
