"""``load``: the task to quantize, from a fine-tuned run directory or a saved tf_keras model."""
from __future__ import annotations

from ._errors import QuantizeError
from ._source import load_keras, load_run
from ._task import check_task, make_task


def load(task: str = "classification", *, model_dir=None, keras_model=None, **settings):
    """``model_dir``: a ``ckpt-finetune`` run (with the pipeline.config / flags it was trained with, as
    ``config_path=`` and settings); ``keras_model``: an ``.h5`` / SavedModel with ``train_input_path``,
    ``test_input_path``, ``label_map_path`` (classification)."""
    if (model_dir is None) == (keras_model is None):
        raise QuantizeError("give exactly one model: a fine-tuned run directory (--trained) or a saved tf_keras "
                            "model (--keras-model)")
    if model_dir is not None:
        source = load_run(model_dir, task=task, **settings)
    else:
        if task != "classification":
            raise QuantizeError(f"--keras-model is for classification; a {task} model comes from --trained")
        source = load_keras(keras_model, **settings)
    built = make_task(task, source)
    check_task(built)
    return built
