"""A TF1 OD API Faster R-CNN ResNet checkpoint converts whole into migrate.models.faster_rcnn.

The rule set is checked against the real zoo file's listing
(faster_rcnn_resnet50_coco_2018_01_28: every tensor but the first stage's
unused block4 copy and global_step maps, at its shape), the fixture (TF1 zoo
names written by TensorFlow's own saver) converts, restores with
``tf.train.Checkpoint(model=m).restore(p).assert_consumed()``, and runs as the
TF1 networks run; parity is shown to catch a wrong weight in either stage.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import reference_listing
from migrate import TargetSpec, TensorSpec, convert, open_checkpoint
from migrate._odapi import faster_rcnn_fields
from migrate._odapi_parity import faster_rcnn_parity
from migrate._plan import plan_model
from migrate._select import SelectOptions
from migrate.models import faster_rcnn

LISTING = "faster_rcnn_resnet50_coco_2018_01_28.tsv"


class _Listing:
    """A reader's names and shapes without its values: what mapping looks at."""

    def __init__(self, specs):
        self._specs, self.path, self.format = specs, LISTING, "tf1-v2"

    def specs(self):
        return self._specs


def _listing_specs() -> dict[str, TensorSpec]:
    return {n: TensorSpec(n, shape, dtype, 0) for n, (shape, dtype) in reference_listing(LISTING).items()}


def test_the_model_is_read_off_the_real_zoo_listing():
    assert faster_rcnn_fields(_listing_specs()) == {
        "depth": 50, "base_depths": [64, 128, 256, 512], "units": [3, 4, 6, 3], "rpn_depth": 512,
        "rpn_kernel_size": 3, "anchors_per_location": 12, "num_classes": 90, "share_box_across_classes": False}
    assert faster_rcnn_fields({k: v for k, v in _listing_specs().items() if not k.startswith("Conv/")}) == {}
    block4 = "SecondStageFeatureExtractor/resnet_v1_50/block4/unit_1/bottleneck_v1/conv1/weights"
    assert faster_rcnn_fields({k: v for k, v in _listing_specs().items() if k != block4}) == {}  # damaged: no model


def test_every_tensor_of_the_real_zoo_file_maps_at_its_shape():
    plan = plan_model(_Listing(_listing_specs()), TargetSpec("auto"), None, "full", SelectOptions())
    report = plan.report
    assert report.rule_set == "od_faster_rcnn_resnet" and report.complete
    assert len(report.mapped) == 325 - 50 and not report.unmapped_source and not report.shape_mismatches
    assert {n for n in report.dropped if "block4" in n} == {
        n for n in _listing_specs() if n.startswith("FirstStageFeatureExtractor/resnet_v1_50/block4/")}
    assert len(plan.weights) == 275 and plan.model.spec.base_depths == (64, 128, 256, 512)


@pytest.fixture(scope="module")
def converted(zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("frcnn") / "out"
    return convert(zoo["faster_rcnn_resnet50_small"], out, target=TargetSpec("auto"), parity=True), out


def test_the_fixture_converts_and_runs_as_the_tf1_networks(converted, tf):
    report, out = converted
    assert report.mode == "module:migrate.models:faster_rcnn" and report.mapping.complete
    assert report.parity.verdict == "passed", report.parity
    assert [e.name for e in report.parity.outputs] == [
        "rpn_box_encodings", "rpn_objectness", "box_encodings", "class_predictions_with_background"]


def test_the_client_restores_every_variable(converted, zoo, tf):
    _, out = converted
    with open_checkpoint(zoo["faster_rcnn_resnet50_small"]) as reader:
        fields = faster_rcnn_fields(reader.specs())
        model = faster_rcnn(**fields)
        status = tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(str(out)))
        status.assert_existing_objects_matched()
        status.assert_consumed()
        kernel = model._first_stage_box_predictor_first_conv.kernel  # noqa: SLF001
        assert np.array_equal(kernel.numpy(), reader.read("Conv/weights"))


@pytest.mark.parametrize("layer,first", [
    ("resnet_v1_50.block2.unit_1.bottleneck_v1.conv2", "features"),
    ("resnet_v1_50.block4.unit_2.bottleneck_v1.conv2", "box_encodings"),
])
def test_parity_catches_a_wrong_weight_in_either_stage(converted, zoo, tf, layer, first):
    _, out = converted
    with open_checkpoint(zoo["faster_rcnn_resnet50_small"]) as reader:
        fields = faster_rcnn_fields(reader.specs())
        model = faster_rcnn(**fields)
        tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(str(out))).assert_consumed()
        stage = model.feature_extractors[0 if first == "features" else 1]
        kernel = stage.get_layer(layer).kernel
        kernel.assign(kernel.numpy()[..., ::-1])  # output channels swapped: same shape, another function
        result = faster_rcnn_parity(reader, model, fields, SelectOptions())
    assert result.verdict == "failed" and result.first_divergence == first


def test_the_zoo_converts_it_into_the_detector_and_the_detection_idiom_restores_it(zoo, tmp_path, tf):
    """``ckpt-migrate zoo`` on a tarball layout: converted into the model (not generically); the feature
    extractors restore as a ``detection`` fine-tune checkpoint, the whole model with ``assert_consumed``."""
    import shutil

    from migrate._zoo import run_zoo
    from migrate._zoo._paths import inside

    root = tmp_path / "zoo" / "detection"
    shutil.copytree(zoo["faster_rcnn_resnet50_small"], root / "faster_rcnn_resnet50_coco_2018_01_28")
    report = run_zoo(root.parent, tmp_path / "out", jobs=1, quiet=True)
    (row,) = report.rows
    assert (row.status, row.target) == ("converted", "module:migrate.models:faster_rcnn")
    path = tf.train.latest_checkpoint(str(inside(tmp_path / "out", row.output)))
    with open_checkpoint(zoo["faster_rcnn_resnet50_small"]) as reader:
        fields = faster_rcnn_fields(reader.specs())
    first, second = faster_rcnn(**fields), faster_rcnn(**fields)
    proposal, classifier = first.feature_extractors
    detection = tf.train.Checkpoint(_feature_extractor_for_proposal_features=proposal,
                                    _feature_extractor_for_box_classifier_features=classifier)
    tf.train.Checkpoint(model=detection).restore(path).expect_partial().assert_existing_objects_matched()
    tf.train.Checkpoint(model=second).restore(path).assert_consumed()
    restored = zip(proposal.weights, second.feature_extractors[0].weights)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in restored)
