"""finetune.tasks.ssd anchors: the OD API's ssd_anchor_generator."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.tasks.ssd import AnchorConfig

SSD_128 = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1), (1, 1)]


def test_counts_per_layer_reduced_lowest_layer():
    config = AnchorConfig()  # 6 layers, 5 aspect ratios + the interpolated one
    assert config.num_anchors_per_location() == [3, 6, 6, 6, 6, 6]
    layers = config.generate_per_layer(SSD_128)
    assert [len(a) for a in layers] == [8 * 8 * 3, 4 * 4 * 6, 2 * 2 * 6, 6, 6, 6]
    assert config.generate(SSD_128).shape == (330, 4)
    assert config.generate(SSD_128).dtype == np.float32


def test_counts_without_reduction_or_interpolation():
    assert AnchorConfig(reduce_boxes_in_lowest_layer=False).num_anchors_per_location() == [6] * 6
    assert AnchorConfig(interpolated_scale_aspect_ratio=0.0).num_anchors_per_location() == [3, 5, 5, 5, 5, 5]


def test_scales_interpolate_between_min_and_max():
    specs = AnchorConfig().box_specs()
    assert specs[0] == [(0.1, 1.0), (0.2, 2.0), (0.2, 0.5)]
    assert specs[1][0] == pytest.approx((0.35, 1.0))
    assert specs[1][-1] == pytest.approx((math.sqrt(0.35 * 0.5), 1.0))
    assert specs[5][0] == pytest.approx((0.95, 1.0))
    assert specs[5][-1] == pytest.approx((math.sqrt(0.95 * 1.0), 1.0))  # scale 1.0 follows the last layer


def test_small_case_by_hand():
    config = AnchorConfig(num_layers=2, min_scale=0.2, max_scale=0.9, aspect_ratios=(1.0, 2.0))
    anchors = config.generate([(2, 2), (1, 1)])
    assert anchors.shape == (2 * 2 * 3 + 3, 4)
    r = math.sqrt(2.0)
    expected_first_cell = [  # centre (0.25, 0.25): (0.1, 1), (0.2, 2), (0.2, 0.5)
        [0.2, 0.2, 0.3, 0.3],
        [0.25 - 0.1 / r, 0.25 - 0.1 * r, 0.25 + 0.1 / r, 0.25 + 0.1 * r],
        [0.25 - 0.1 * r, 0.25 - 0.1 / r, 0.25 + 0.1 * r, 0.25 + 0.1 / r],
    ]
    np.testing.assert_allclose(anchors[:3], expected_first_cell, atol=1e-6)
    # box spec fastest, then column: the 4th anchor is (0.1, 1) at centre (0.25, 0.75)
    np.testing.assert_allclose(anchors[3], [0.2, 0.7, 0.3, 0.8], atol=1e-6)
    np.testing.assert_allclose(anchors[9], [0.7, 0.7, 0.8, 0.8], atol=1e-6)  # last cell (0.75, 0.75)
    h = math.sqrt(0.9)  # interpolated scale sqrt(0.9 * 1.0)
    expected_top = [  # 1x1 grid, centre 0.5: (0.9, 1), (0.9, 2), (sqrt(0.9), 1); not clipped
        [0.05, 0.05, 0.95, 0.95],
        [0.5 - 0.45 / r, 0.5 - 0.45 * r, 0.5 + 0.45 / r, 0.5 + 0.45 * r],
        [0.5 - h / 2, 0.5 - h / 2, 0.5 + h / 2, 0.5 + h / 2],
    ]
    np.testing.assert_allclose(anchors[12:], expected_top, atol=1e-6)


def test_non_square_image_keeps_anchors_square_in_pixels():
    config = AnchorConfig(num_layers=1, aspect_ratios=(1.0,), interpolated_scale_aspect_ratio=0.0,
                          reduce_boxes_in_lowest_layer=False, scales=(0.5,))
    (box,) = config.generate([(1, 1)], image_shape=(100, 200))
    np.testing.assert_allclose(box, [0.25, 0.375, 0.75, 0.625], atol=1e-6)  # 50 x 50 pixels


def test_explicit_strides_and_offsets_in_pixels():
    config = AnchorConfig(num_layers=1, scales=(0.1,), aspect_ratios=(1.0,), interpolated_scale_aspect_ratio=0.0,
                          reduce_boxes_in_lowest_layer=False, height_stride=(50,), width_stride=(50,),
                          height_offset=(10,), width_offset=(20,))
    anchors = config.generate([(2, 2)], image_shape=(100, 100))
    np.testing.assert_allclose(anchors[:, :2] + 0.05, [[0.1, 0.2], [0.1, 0.7], [0.6, 0.2], [0.6, 0.7]], atol=1e-6)


def test_layer_count_must_match_feature_maps():
    with pytest.raises(ValueError, match="num_layers is 6 but the model has 2 feature maps"):
        AnchorConfig().generate([(4, 4), (2, 2)])
    with pytest.raises(ValueError, match="expected 6 scales"):
        AnchorConfig(scales=(0.1, 0.2)).box_specs()
