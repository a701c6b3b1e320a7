"""Checking TFRecords of OD API examples before training, record by record.

One pass over every input file (native: framing, Example parsing, image
headers, boxes and labels; then, if asked, a full image decode with
TensorFlow) gives the index of usable records and a :class:`RecordStats`
counter.  A bad record is either an error (all of them listed in one
:class:`DataError`) or, with ``skip_bad_records``, skipped and counted.
Records whose labels do not match the label map are never skipped: that is
a wrong label map, not a damaged record, and it raises :class:`LabelMapError`.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from migrate.formats import ProtoError

from ._label_map import LabelMap, LabelMapError
from ._tfrecord import DataError, decode_example, iter_records

MAX_PROBLEMS = 20  # problem lines kept (and shown) per scan
BOX_TOLERANCE = 1e-4  # coordinates this far outside [0, 1] are clipped, not rejected
KEYS = {
    "encoded": "image/encoded", "format": "image/format", "height": "image/height", "width": "image/width",
    "filename": "image/filename", "source_id": "image/source_id",
    "xmin": "image/object/bbox/xmin", "xmax": "image/object/bbox/xmax",
    "ymin": "image/object/bbox/ymin", "ymax": "image/object/bbox/ymax",
    "label": "image/object/class/label", "text": "image/object/class/text",
    "class_label": "image/class/label", "class_text": "image/class/text",
}


class BadRecord(ValueError):
    """One record that cannot be used: ``code`` counts it, the message says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class LabelMismatch(ValueError):
    """A record whose labels are not those of the label map."""


@dataclass(frozen=True)
class RecordStats:
    """What a scan found: the counter the engine reports.  ``skipped`` maps a reason to a count."""

    files: int = 0
    records: int = 0
    used: int = 0
    skipped: dict = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # the first MAX_PROBLEMS, "file#record: reason"
    objects: int = 0
    objects_per_class: dict = field(default_factory=dict)
    truncated_boxes: int = 0  # boxes beyond max_boxes, left out

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        text = f"{self.used} of {self.records} records in {self.files} file(s) used"
        if self.skipped:
            text += "; skipped: " + ", ".join(f"{n} {code}" for code, n in sorted(self.skipped.items()))
        if self.truncated_boxes:
            text += f"; {self.truncated_boxes} boxes beyond the maximum left out"
        return text

    def to_dict(self) -> dict:
        return {"files": self.files, "records": self.records, "used": self.used, "skipped": dict(self.skipped),
                "skipped_total": self.skipped_total, "problems": list(self.problems), "objects": self.objects,
                "objects_per_class": {str(k): v for k, v in sorted(self.objects_per_class.items())},
                "truncated_boxes": self.truncated_boxes}


@dataclass(frozen=True, eq=False)
class Parsed:
    """One usable example, checked: boxes ``[N, 4]`` (ymin, xmin, ymax, xmax) in [0, 1], label-map ids."""

    image: bytes
    height: int
    width: int
    boxes: np.ndarray
    classes: np.ndarray
    label: int = 0  # classification records
    source_id: str = ""
    filename: str = ""


@dataclass(frozen=True, eq=False)
class RecordIndex:
    """Where the usable records are: ``(file, offset, length)`` per record, in file order."""

    paths: tuple[str, ...]
    file_ids: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def _one(features: dict, key: str, kind: str, default=None):
    got = features.get(key)
    if got is None or not got[1]:
        return default
    if got[0] != kind:
        raise BadRecord("bad_feature", f"{key} holds {got[0]} values, expected {kind}")
    return got[1][0]


def _values(features: dict, key: str, kind: str) -> list:
    got = features.get(key)
    if got is None:
        return []
    if got[1] and got[0] != kind:
        raise BadRecord("bad_feature", f"{key} holds {got[0]} values, expected {kind}")
    return got[1]


def image_size(data: bytes) -> Optional[tuple[str, int, int]]:
    """(format, height, width) from a JPEG's SOF or a PNG's IHDR header; None if it is neither or is cut short."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        if not data.endswith(b"IEND\xaeB`\x82"):
            return None
        return "png", int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")
    if data[:3] != b"\xff\xd8\xff" or data.rfind(b"\xff\xd9", max(0, len(data) - 1024)) < 0:
        return None
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return "jpeg", int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big")
        pos += 2 + length
    return None


def _image(features: dict) -> tuple[bytes, int, int]:
    data = _one(features, KEYS["encoded"], "bytes")
    if not data:
        raise BadRecord("missing_image", "no image/encoded")
    header = image_size(data)
    if header is None:
        raise BadRecord("unreadable_image", "image/encoded is not a complete JPEG or PNG")
    fmt, height, width = header
    stated = (_one(features, KEYS["height"], "int64"), _one(features, KEYS["width"], "int64"))
    if stated != (None, None) and stated != (height, width):
        raise BadRecord("bad_image", f"image/height,width say {stated[0]}x{stated[1]} "
                        f"but the {fmt.upper()} is {height}x{width}")
    return data, height, width


def _boxes(features: dict) -> np.ndarray:
    coords = [_values(features, KEYS[k], "float") for k in ("ymin", "xmin", "ymax", "xmax")]
    if len({len(c) for c in coords}) != 1:
        raise BadRecord("bad_box", "bbox ymin/xmin/ymax/xmax lists differ in length "
                        f"({', '.join(str(len(c)) for c in coords)})")
    boxes = np.asarray(coords, dtype=np.float32).reshape(4, -1).T
    for i, (ymin, xmin, ymax, xmax) in enumerate(boxes):
        if not np.all(np.isfinite(boxes[i])) or boxes[i].min() < -BOX_TOLERANCE or boxes[i].max() > 1 + BOX_TOLERANCE:
            raise BadRecord("bad_box", f"box {i} {boxes[i].round(4).tolist()} lies outside [0, 1] "
                            "(coordinates must be normalised)")
        if xmin > xmax or ymin > ymax:
            side = "xmin > xmax" if xmin > xmax else "ymin > ymax"
            raise BadRecord("bad_box", f"box {i} has {side} ({boxes[i].round(4).tolist()} as ymin, xmin, ymax, xmax)")
    return np.clip(boxes, 0.0, 1.0)


def _classes(features: dict, count: int, label_map: LabelMap, use_display_name: bool) -> np.ndarray:
    labels = _values(features, KEYS["label"], "int64")
    texts = [t.decode("utf-8", "replace") for t in _values(features, KEYS["text"], "bytes")]
    if not labels and texts:  # the OD API maps text to ids when labels are absent
        labels = []
        for text in texts:
            class_id = label_map.id_of(text, use_display_name)
            if class_id is None:
                raise LabelMismatch(f"class text {text!r} is not in the label map")
            labels.append(class_id)
    if len(labels) != count:
        raise BadRecord("missing_label", f"{count} boxes but {len(labels)} class labels")
    known = set(label_map.ids)
    for i, class_id in enumerate(labels):
        if class_id not in known:
            raise LabelMismatch(f"class id {class_id} is not in the label map (ids {_ids(label_map)})")
        if len(texts) == count:
            item = label_map.item(class_id)
            expected = item.display_name if use_display_name else item.name
            if texts[i] != expected:
                raise LabelMismatch(f"box {i} is class {class_id} {texts[i]!r} but the label map names id "
                                    f"{class_id} {expected!r}")
    return np.asarray(labels, dtype=np.int32)


def _ids(label_map: LabelMap) -> str:
    ids = label_map.ids
    return f"{ids[0]}..{ids[-1]}" if ids == tuple(range(ids[0], ids[-1] + 1)) else ", ".join(map(str, ids))


def parse_record(data: bytes, kind: str, label_map: LabelMap, use_display_name: bool = False) -> Parsed:
    """Check one serialised Example (``kind``: detection or classification)."""
    try:
        features = decode_example(data)
    except (ProtoError, UnicodeDecodeError) as e:
        raise BadRecord("not_an_example", f"not a tf.train.Example ({e})") from None
    image, height, width = _image(features)
    source = (_one(features, KEYS["source_id"], "bytes", b"") or b"").decode("utf-8", "replace")
    filename = (_one(features, KEYS["filename"], "bytes", b"") or b"").decode("utf-8", "replace")
    if kind == "classification":
        label = _one(features, KEYS["class_label"], "int64")
        if label is None:
            raise BadRecord("missing_label", "no image/class/label")
        if label not in label_map.ids:
            raise LabelMismatch(f"image/class/label {label} is not in the label map (ids {_ids(label_map)})")
        empty = np.zeros((0, 4), np.float32)
        return Parsed(image, height, width, empty, np.zeros((0,), np.int32), int(label), source, filename)
    boxes = _boxes(features)
    classes = _classes(features, len(boxes), label_map, use_display_name)
    return Parsed(image, height, width, boxes, classes, 0, source, filename)


class _Scan:
    def __init__(self, label_map: LabelMap, kind: str, max_boxes: int, use_display_name: bool, verify: bool):
        self.label_map, self.kind, self.max_boxes, self.display = label_map, kind, max_boxes, use_display_name
        self.decode = _image_decoder() if verify else None
        self.skipped: Counter = Counter()
        self.per_class: Counter = Counter()
        self.problems: list[str] = []
        self.mismatches: list[str] = []
        self.records = self.objects = self.truncated = 0
        self.good: list[tuple[int, int, int]] = []  # file id, offset, length

    def bad(self, where: str, code: str, message: str) -> None:
        self.skipped[code] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {message}")

    def file(self, file_id: int, path: str) -> None:
        before = self.records
        for record in iter_records(path):
            self.records += 1
            where = f"{os.path.basename(path)}#{record.index} (offset {record.offset})"
            if record.data is None:
                self.bad(where, "corrupt_record", record.problem)
                continue
            try:
                parsed = parse_record(record.data, self.kind, self.label_map, self.display)
                if self.decode is not None:
                    self.decode(parsed.image)
            except BadRecord as e:
                self.bad(where, e.code, str(e))
                continue
            except LabelMismatch as e:
                if len(self.mismatches) < MAX_PROBLEMS:
                    self.mismatches.append(f"{where}: {e}")
                continue
            self.good.append((file_id, record.offset, record.length))
            self.objects += len(parsed.classes)
            self.truncated += max(0, len(parsed.classes) - self.max_boxes)
            self.per_class.update((parsed.classes.tolist() if self.kind == "detection" else [parsed.label]))
        if self.records == before:
            self.bad(os.path.basename(path), "empty_file", "the file holds no records")


def _quiet_decoder():
    """libjpeg prints warnings for damaged images straight to fd 2; the counter reports them instead."""
    from migrate.tf import quiet_native_stderr  # noqa: PLC0415

    return quiet_native_stderr()


def _image_decoder():
    """A function that decodes an image with TensorFlow or raises BadRecord: what a header
    check cannot see (damaged pixel data)."""
    from migrate.tf import tensorflow  # noqa: PLC0415 - only when images are verified

    tf = tensorflow()

    def decode(data: bytes) -> None:
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
            message = re.sub(r"\{\{.*?\}\}\s*", "", str(e)).strip().splitlines()[0][:120]
            raise BadRecord("unreadable_image", f"the image does not decode ({message})") from None

    return decode


def scan(paths: Sequence, label_map: LabelMap, kind: str = "detection", *, skip_bad_records: bool = False,
         verify_images: bool = True, max_boxes: int = 100,
         use_display_name: bool = False) -> tuple[RecordIndex, RecordStats]:
    """Check every record of ``paths``; return the usable ones and the counts (see the module docstring)."""
    paths = tuple(str(p) for p in paths)
    if not paths:
        raise DataError("no TFRecord files given; set tf_record_input_reader.input_path or pass --train-input-path")
    state = _Scan(label_map, kind, max_boxes, use_display_name, verify_images)
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"{path}: TFRecord file not found; check input_path in the pipeline.config")
    with _quiet_decoder() if verify_images else contextlib.nullcontext():
        for file_id, path in enumerate(paths):
            state.file(file_id, path)
    if state.mismatches:
        raise LabelMapError(f"{label_map.source or 'the label map'} does not match the records: "
                            f"{'; '.join(state.mismatches[:5])}; use the label map the records were written with")
    if state.skipped and not skip_bad_records:
        total = sum(state.skipped.values())
        raise DataError(f"{total} bad record(s) in {', '.join(map(os.path.basename, paths))}: "
                        f"{'; '.join(state.problems[:5])}{'; ...' if total > 5 else ''}; "
                        "fix or regenerate the data, or pass --skip-bad-records to skip and count them")
    if not state.good:
        raise DataError(f"no usable records in {', '.join(paths)} ({state.records} read); "
                        "check that these are TFRecords of OD API examples")
    stats = RecordStats(len(paths), state.records, len(state.good), dict(state.skipped), tuple(state.problems),
                        state.objects, dict(state.per_class), state.truncated)
    columns = list(zip(*state.good))
    index = RecordIndex(paths, np.asarray(columns[0], np.int32), np.asarray(columns[1], np.int64),
                        np.asarray(columns[2], np.int64))
    return index, stats
