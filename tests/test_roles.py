"""Every tensor gets the role a legacy-checkpoint user would give it."""
from __future__ import annotations

import pytest

from migrate import classify_role, inspect

CASES = [
    ("MobilenetV1/Conv2d_0/weights", "float32", "parameter", None),
    ("MobilenetV1/Conv2d_0/BatchNorm/moving_mean", "float32", "normalization_statistic", None),
    ("MobilenetV1/Conv2d_0/weights/RMSProp_1", "float32", "optimizer_slot", "RMSProp"),
    ("resnet_v2_50/conv1/weights/Momentum", "float32", "optimizer_slot", "Momentum"),
    ("bert/pooler/dense/kernel/Adam_1", "float32", "optimizer_slot", "Adam"),
    ("bert/pooler/dense/kernel/adam_m", "float32", "optimizer_slot", "AdamWeightDecay (BERT)"),
    ("beta1_power", "float32", "optimizer_state", "Adam"),
    ("learning_rate", "float32", "optimizer_state", None),
    ("MobilenetV1/Conv2d_0/weights/ExponentialMovingAverage", "float32", "moving_average", None),
    ("global_step", "int64", "counter", None),
    ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "int64", "counter", None),
    ("_CHECKPOINTABLE_OBJECT_GRAPH", "string", "metadata", None),
    ("vgg_16/mean_rgb", "float32", "metadata", None),
    ("model/dense/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", "float32", "optimizer_slot", "Adam"),
    ("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", "int64", "optimizer_state", None),
    ("model_weights/dense/dense/kernel:0", "float32", "parameter", None),
    ("optimizer_weights/Adam/dense/kernel/m:0", "float32", "optimizer_slot", "Adam"),
    ("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", "int64", "optimizer_state", None),
    ("optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE", "float32", "optimizer_state", None),
    ("optimizer/_variables/12/.ATTRIBUTES/VARIABLE_VALUE", "float32", "optimizer_slot", "Keras optimizer (slot names not stored)"),
    ("optimizer_weights/iteration:0", "int64", "optimizer_state", None),
    ("some/int/table", "int32", "other", None),
]


@pytest.mark.parametrize("name,dtype,role,optimizer", CASES)
def test_classify(name, dtype, role, optimizer):
    got = classify_role(name, dtype)
    assert (got.role, got.optimizer) == (role, optimizer)


def test_fixture_roles(zoo):
    by_role = inspect(zoo["mobilenet_v1_rmsprop_ema"]).totals.by_role
    assert by_role["optimizer_slot"].tensors == 2 * by_role["parameter"].tensors
    assert by_role["moving_average"].tensors >= by_role["parameter"].tensors
    assert by_role["counter"].tensors == 1
    adam = inspect(zoo["bert_tiny_adam"])
    assert {t.name for t in adam.tensors if t.role == "optimizer_state"} >= {"beta1_power", "beta2_power"}
    assert {t.optimizer for t in adam.tensors if t.role == "optimizer_slot"} == {"Adam"}


@pytest.mark.parametrize("name", ["tf2_object", "tf2_object_legacy_adam", "keras_h5_full", "saved_model"])
def test_no_optimizer_tensor_counts_as_a_weight(name, zoo):
    for t in inspect(zoo[name]).tensors:
        if t.name.startswith("optimizer"):
            assert t.role in ("optimizer_slot", "optimizer_state"), t.name
        if t.role in ("parameter", "normalization_statistic"):
            assert "optimizer" not in t.name, t.name
