"""Architecture detection on real zoo listings and on the fixture zoo."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import reference_listing
from migrate import TensorSpec, detect_architecture, inspect
from migrate._arch import signatures

REAL_LISTINGS = {
    "faster_rcnn_resnet50_coco_2018_01_28.tsv": "od/faster_rcnn_resnet50",
    "ssd_mobilenet_v2_coco_2018_03_29.tsv": "od/ssd_mobilenet_v2",
    "tf2_ssd_mobilenet_v2_320x320_coco17_tpu-8_ckpt-0.tsv": "od2/ssd_keras",
    "vgg_16_2016_08_28.tsv": "slim/vgg_16",
}
FIXTURE_ARCHITECTURES = {
    "resnet_v1_50_small": "slim/resnet_v1_50",
    "resnet_v2_50_small": "slim/resnet_v2_50",
    "inception_v3_small": "slim/inception_v3",
    "vgg_16_small": "slim/vgg_16",
    "vgg_16_v1": "slim/vgg_16",
    "vgg_19_small": "slim/vgg_19",
    "mobilenet_v1_small": "slim/mobilenet_v1",
    "mobilenet_v1_rmsprop_ema": "slim/mobilenet_v1",
    "mobilenet_v2_small": "slim/mobilenet_v2",
    "ssd_mobilenet_v1_small": "od/ssd_mobilenet_v1",
    "ssd_mobilenet_v2_small": "od/ssd_mobilenet_v2",
    "faster_rcnn_resnet50_small": "od/faster_rcnn_resnet50",
    "bert_tiny": "bert",
    "bert_tiny_adam": "bert",
    "partitioned": "unknown",
}


def _specs(names_shapes) -> dict[str, TensorSpec]:
    return {n: TensorSpec(n, shape, dtype, 0) for n, (shape, dtype) in names_shapes.items()}


@pytest.mark.parametrize("listing,expected", REAL_LISTINGS.items())
def test_detects_real_zoo_listings(listing, expected):
    guess = detect_architecture(_specs(reference_listing(listing)))
    assert guess.name == expected
    assert guess.confidence == 1.0
    assert guess.evidence


def test_detects_faster_rcnn_inception_v2_names():
    names = [n for n in Path(__file__).with_name("data").joinpath("faster_rcnn_inception_v2_names.txt").read_text().splitlines()
             if n and not n.startswith("#")]
    assert detect_architecture(_specs({n: ((1,), "float32") for n in names})).name == "od/faster_rcnn_inception_v2"


@pytest.mark.parametrize("name,expected", FIXTURE_ARCHITECTURES.items())
def test_detects_fixture_architectures(name, expected, zoo):
    guess = inspect(zoo[name]).architecture
    assert guess.name == expected
    if expected != "unknown":
        assert guess.confidence >= 0.9, guess.evidence


def test_bert_reports_layers_and_hidden_size(zoo):
    guess = inspect(zoo["bert_tiny"]).architecture
    assert guess.params == {"layers": 2, "hidden_size": 32, "vocab_size": 100}


def test_resnet_depth_variants_from_names():
    base = reference_listing("faster_rcnn_resnet50_coco_2018_01_28.tsv")
    slim = {n.split("/", 1)[1]: v for n, v in base.items() if n.startswith("FirstStageFeatureExtractor/")}
    as_101 = {n.replace("resnet_v1_50", "resnet_v1_101"): v for n, v in slim.items()}
    for unit in range(7, 24):  # resnet_v1_101 has 23 units in block3
        as_101[f"resnet_v1_101/block3/unit_{unit}/bottleneck_v1/conv1/weights"] = ((1, 1, 1024, 256), "float32")
    as_101["resnet_v1_101/logits/weights"] = ((1, 1, 2048, 1000), "float32")
    guess = detect_architecture(_specs(as_101))
    assert guess.name == "slim/resnet_v1_101" and guess.confidence == 1.0


def test_inconsistent_depth_lowers_confidence():
    names = {f"resnet_v1_101/block3/unit_{u}/bottleneck_v1/conv1/weights": ((1,), "float32") for u in range(1, 7)}
    names["resnet_v1_101/conv1/weights"] = ((7, 7, 3, 64), "float32")
    guess = detect_architecture(_specs(names))
    assert guess.name == "slim/resnet_v1_101"
    assert guess.confidence < 0.5
    assert any("but 101 has 23" in e for e in guess.evidence)


def test_unknown_names():
    guess = detect_architecture(_specs({"foo/bar": ((3,), "float32")}))
    assert guess.name == "unknown" and guess.confidence == 0.0


@pytest.mark.parametrize("signature", signatures(), ids=lambda s: s.name)
def test_every_signature_is_exercised(signature):
    """A new signature must come with a sample that it detects (listing, fixture or data file)."""
    covered = set(REAL_LISTINGS.values()) | set(FIXTURE_ARCHITECTURES.values()) | {"od/faster_rcnn_inception_v2"}
    pattern = re.escape(signature.name).replace(r"\{depth\}", r"\d+")
    assert any(re.fullmatch(pattern, name) for name in covered), f"no test sample for {signature.name}"
