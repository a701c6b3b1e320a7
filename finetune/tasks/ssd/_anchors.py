"""SSD anchors: the OD API's ``ssd_anchor_generator`` (a multiple grid anchor generator).

Anchors are fixed by the feature map sizes, so they are computed once, in
numpy, as float32 ``[num_anchors, 4]`` normalised ``(ymin, xmin, ymax, xmax)``.
The order is the OD API's and the box predictor's: feature map, then row, then
column, then box spec (fastest), so a head's ``[B, H, W, A * 4]`` output
reshaped to ``[B, H * W * A, 4]`` lines up with the anchors.

Semantics follow ``create_ssd_anchors`` / ``MultipleGridAnchorGenerator``:

* layer ``i`` of ``num_layers`` has scale ``min + (max - min) * i / (num_layers - 1)``
  (or the explicit ``scales``), and scale 1.0 follows the last one;
* the lowest layer has the fixed specs ``(0.1, 1.0), (s, 2.0), (s, 0.5)`` when
  ``reduce_boxes_in_lowest_layer``; every other layer has one spec per aspect
  ratio plus, unless ``interpolated_scale_aspect_ratio`` is 0, one of scale
  ``sqrt(s * s_next)`` and that aspect ratio;
* a box of scale ``s`` and ratio ``r`` is ``s / sqrt(r)`` high and ``s * sqrt(r)``
  wide, times the base anchor size, itself scaled by ``min(H, W) / H`` and
  ``min(H, W) / W`` so square anchors stay square on non-square images;
* centres sit on a ``1 / grid`` stride with half a stride of offset, unless
  strides and offsets (in pixels) are given.  Anchors are not clipped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from finetune.config._ssd_schema import SsdAnchorGenerator


@dataclass(frozen=True)
class AnchorConfig(SsdAnchorGenerator):
    """``ssd_anchor_generator`` of an OD API pipeline.config: the config schema's fields and defaults (strides
    and offsets in pixels per layer; empty: one grid cell, half a cell), with the anchor arithmetic."""

    def box_specs(self) -> list[list[tuple[float, float]]]:
        """Per layer, the (scale, aspect ratio) of each box placed at every grid cell."""
        if self.num_layers < 1:
            raise ValueError(f"ssd_anchor_generator: expected num_layers >= 1, got {self.num_layers}")
        if self.scales:
            if len(self.scales) != self.num_layers:
                raise ValueError(f"ssd_anchor_generator: expected {self.num_layers} scales (one per layer), "
                                 f"got {len(self.scales)}; give one scale per layer or none")
            scales = [float(s) for s in self.scales]
        elif self.num_layers == 1:
            scales = [self.min_scale]
        else:
            scales = [self.min_scale + (self.max_scale - self.min_scale) * i / (self.num_layers - 1)
                      for i in range(self.num_layers)]
        scales.append(1.0)
        specs = []
        for layer, (scale, scale_next) in enumerate(zip(scales[:-1], scales[1:])):
            if layer == 0 and self.reduce_boxes_in_lowest_layer:
                layer_specs = [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
            else:
                layer_specs = [(scale, float(r)) for r in self.aspect_ratios]
                if self.interpolated_scale_aspect_ratio > 0.0:
                    layer_specs.append((math.sqrt(scale * scale_next), self.interpolated_scale_aspect_ratio))
            specs.append(layer_specs)
        return specs

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) for s in self.box_specs()]

    def generate(self, feature_map_shapes, image_shape=(1, 1)) -> np.ndarray:
        """Anchors for feature maps ``[(h0, w0), ...]`` (finest first) of an image ``(H, W)``."""
        return np.concatenate(self.generate_per_layer(feature_map_shapes, image_shape), axis=0)

    def generate_per_layer(self, feature_map_shapes, image_shape=(1, 1)) -> list[np.ndarray]:
        shapes = [tuple(int(d) for d in s) for s in feature_map_shapes]
        specs = self.box_specs()
        if len(shapes) != len(specs):
            raise ValueError(f"ssd_anchor_generator: num_layers is {len(specs)} but the model has "
                             f"{len(shapes)} feature maps {shapes}; set num_layers to {len(shapes)}")
        im_h, im_w = (float(d) for d in image_shape)
        shortest = min(im_h, im_w)
        base = (shortest / im_h * self.base_anchor_height, shortest / im_w * self.base_anchor_width)
        strides, offsets = self._strides_and_offsets(shapes, im_h, im_w)
        return [tile_anchors(shape, layer_specs, base, stride, offset)
                for shape, layer_specs, stride, offset in zip(shapes, specs, strides, offsets)]

    def _strides_and_offsets(self, shapes, im_h: float, im_w: float):
        n = len(shapes)
        for name in ("height_stride", "width_stride", "height_offset", "width_offset"):
            value = getattr(self, name)
            if value and len(value) != n:
                raise ValueError(f"ssd_anchor_generator: {name} needs one value per layer ({n}), got {len(value)}")
        if self.height_stride:
            strides = [(h / im_h, w / im_w) for h, w in zip(self.height_stride, self.width_stride)]
        else:
            strides = [(1.0 / h, 1.0 / w) for h, w in shapes]
        if self.height_offset:
            offsets = [(h / im_h, w / im_w) for h, w in zip(self.height_offset, self.width_offset)]
        else:
            offsets = [(0.5 * sy, 0.5 * sx) for sy, sx in strides]
        return strides, offsets


def tile_anchors(grid_shape, box_specs, base_anchor_size, stride, offset) -> np.ndarray:
    """``grid_anchor_generator.tile_anchors``: the box specs centred on every cell of a grid."""
    scales = np.array([s for s, _ in box_specs], np.float64)
    ratio_sqrts = np.sqrt(np.array([r for _, r in box_specs], np.float64))
    heights = scales / ratio_sqrts * base_anchor_size[0]
    widths = scales * ratio_sqrts * base_anchor_size[1]
    y_centers = np.arange(grid_shape[0]) * stride[0] + offset[0]
    x_centers = np.arange(grid_shape[1]) * stride[1] + offset[1]
    yc, xc, h = np.meshgrid(y_centers, x_centers, heights, indexing="ij")
    w = np.broadcast_to(widths, h.shape)
    corners = np.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=-1)
    return corners.reshape(-1, 4).astype(np.float32)
