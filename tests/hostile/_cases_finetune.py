"""Corpus: pipeline.config, label maps and TFRecords of OD API examples through ``ckpt-finetune train`` / ``eval``.

The base is the ``detection_shapes`` data set (its pipeline.config, label map
and TFRecords).  Record files are the first few records of its real
``train.record``, re-framed with finetune's own ``write_records`` and then
damaged in place (checksums recomputed where the case needs the reader to get
past them).  Runs are tiny (64x64, depth 0.25, batch 4, one step, no
fine-tune checkpoint) and every case fails at the check stage, before a model
is built; the records' images are decoded once by TensorFlow, so a record
case costs a TensorFlow import.
"""
from __future__ import annotations

import struct
from itertools import islice
from pathlib import Path

from finetune.data import KEYS, decode_example, detection_example, encode_example, iter_records, write_records
from migrate._formats._crc import crc32c, mask

from ._case import case
from ._damage import truncate

BASE = "detection_shapes"
FT = ("ckpt-finetune train --out {out}/run --image-size 64 --depth-multiplier 0.25 --batch-size 4 "
      "--num-steps 1 --quiet --from-scratch")
CONFIG = FT + " --pipeline-config {in}/pipeline.config"
FLAGS = FT + " --feature-extractor ssd_mobilenet_v1 --label-map-path {in}/label_map.pbtxt --train-input-path {in}/t.record"
EVAL = ("ckpt-finetune eval --out {out}/run --image-size 64 --depth-multiplier 0.25 --eval-batch-size 4 "
        "--pipeline-config {in}/pipeline.config --eval-input-path {in}/t.record")
PC = r"pipeline\.config:\d+:\d+: "
LM = r"label_map\.pbtxt:\d+:\d+: "
BAD = r"1 bad record\(s\) in t\.record: t\.record#\d+ \(offset \d+\): "


def _config(box, edit) -> None:
    path = box.inp / "pipeline.config"
    text = path.read_text()
    changed = edit(text)
    if changed == text:
        raise ValueError("the damage did not change pipeline.config")
    path.write_bytes(changed if isinstance(changed, bytes) else changed.encode())


def _label_map(box, text: str | bytes) -> None:
    (box.inp / "label_map.pbtxt").write_bytes(text if isinstance(text, bytes) else text.encode())


# -- pipeline.config ---------------------------------------------------------------------------
@case("pipeline", BASE, CONFIG, PC + r"expected a field name or '}', found end of file \(the '\w+' message "
      r"opened at \d+:\d+ is not closed\)")
def pipeline_truncated_mid_message(box):
    truncate(box.inp / "pipeline.config", 0.5)


@case("pipeline", BASE, CONFIG, PC + r"expected a field name, found '}'; is there one '}' too many\?")
def pipeline_extra_closing_brace(box):
    _config(box, lambda t: t.replace("train_config {", "}\ntrain_config {", 1))


@case("pipeline", BASE, CONFIG, PC + r"expected a field name or '}', found end of file \(the 'eval_input_reader' "
      r"message opened at \d+:\d+ is not closed\)")
def pipeline_missing_closing_brace(box):
    _config(box, lambda t: t.rstrip().removesuffix("}"))


@case("pipeline", BASE, CONFIG, r"pipeline\.config: cannot read the file \('utf-8' codec can't decode byte 0xff")
def pipeline_not_utf8(box):
    _config(box, lambda t: t.encode().replace(b"num_classes: 3", b"num_classes: 3 # \xff\xfe", 1))


@case("pipeline", BASE, CONFIG, PC + r"messages nested more than 100 levels deep")
def pipeline_deeply_nested(box):
    """10,000 levels: a recursive parser would die of RecursionError (it did: fixed in migrate.textproto)."""
    _config(box, lambda t: "model " + "{ ssd " * 10000 + "}" * 10000 + "\n" + t)


@case("pipeline", BASE, CONFIG, PC + r"number 9{20}\.\.\. has 5000 characters; too long to be a setting")
def pipeline_number_of_5000_digits(box):
    """int() refuses more than 4,300 digits with a ValueError (it escaped as an internal error: fixed)."""
    _config(box, lambda t: t.replace("num_classes: 3", "num_classes: " + "9" * 5000, 1))


@case("pipeline", BASE, CONFIG, PC + r"model\.ssd\.num_classes: num_classes 9223372036854775807 \(at most 10000")
def pipeline_num_classes_huge(box):
    """2**63 - 1 classes: the class head would be built (and TensorFlow refused it with a ValueError: fixed)."""
    _config(box, lambda t: t.replace("num_classes: 3", "num_classes: 9223372036854775807", 1))


@case("pipeline", BASE, CONFIG.replace(" --image-size 64", ""), PC + r"model\.ssd\.image_resizer\.fixed_shape_resizer\.height: input size 1000000x1000000 is larger than ckptkit builds \(at most 4096")
def pipeline_image_size_huge(box):
    """A 10**6-pixel-square input: the anchor grid alone asked numpy for 87 GiB (fixed: a bound)."""
    _config(box, lambda t: t.replace("height: 128", "height: 1000000", 1).replace("width: 128", "width: 1000000", 1))


@case("pipeline", BASE, CONFIG, PC + r"unexpected character '\\x00'")
def pipeline_nul_byte(box):
    _config(box, lambda t: t.replace("num_classes: 3", "num_classes: 3\x00", 1))


@case("pipeline", BASE, CONFIG, PC + r"model\.ssd\.post_processing\.score_converter expects one of IDENTITY, "
      r"SIGMOID, SOFTMAX \(unquoted\), found SIGMOIDAL")
def pipeline_unknown_enum(box):
    _config(box, lambda t: t.replace("score_converter: SIGMOID", "score_converter: SIGMOIDAL", 1))


@case("pipeline", BASE, CONFIG, r"\.\./etc/passwd:1:\d+: expected ")
def pipeline_label_map_path_traversal(box):
    """``../`` out of the config's directory: read (as any path the user wrote), refused as a label map."""
    _config(box, lambda t: t.replace('label_map_path: "label_map.pbtxt"',
                                     'label_map_path: "' + "../" * 30 + 'etc/passwd"', 1))


@case("pipeline", BASE, CONFIG, r"bad record\(s\) in passwd: passwd#0 \(offset 0\): corrupt length field")
def pipeline_input_path_absolute(box):
    _config(box, lambda t: t.replace('input_path: "train.record"', 'input_path: "/etc/passwd"', 1))


@case("pipeline", BASE, CONFIG, r"train input path\(s\) match no file: .*pipeline\.config:\d+:\d+: 'train\\x00x")
def pipeline_input_path_with_nul(box):
    _config(box, lambda t: t.replace('input_path: "train.record"', 'input_path: "train\\000x.record"', 1))


@case("pipeline", BASE, CONFIG, PC + r"string escapes do not form valid UTF-8")
def pipeline_string_not_utf8(box):
    _config(box, lambda t: t.replace('label_map_path: "label_map.pbtxt"', 'label_map_path: "\\377\\376"', 1))


@case("pipeline", BASE, FT + " --pipeline-config {in}", r"in: cannot read the file \(\[Errno 21\] Is a directory")
def pipeline_is_a_directory(box):
    pass


@case("pipeline", BASE, CONFIG, r"pipeline\.config: train_input_reader\.label_map_path is not set")
def pipeline_empty(box):
    (box.inp / "pipeline.config").write_bytes(b"")


@case("pipeline", BASE, FT + " --pipeline-config {in}/pipeline.config --image-size 99999",
      r"--image-size: model\.ssd\.image_resizer\.fixed_shape_resizer\.height: input size 99999x99999 is larger than ckptkit builds")
def pipeline_flag_image_size_huge(box):
    pass


# -- label maps --------------------------------------------------------------------------------
ITEMS = 'item { id: 1 name: "circle" }\nitem { id: 2 name: "square" }\nitem { id: 3 name: "triangle" }\n'


@case("label-map", BASE, CONFIG, r"label_map\.pbtxt:3:1: id 2 is used twice \(items at lines 2 and 3\)")
def label_map_duplicate_id(box):
    _label_map(box, 'item { id: 1 name: "circle" }\nitem { id: 2 name: "square" }\nitem { id: 2 name: "triangle" }\n')


@case("label-map", BASE, CONFIG, LM + r"id 0 is not positive; ids start at 1 \(0 is reserved for background\)")
def label_map_id_zero(box):
    _label_map(box, 'item { id: 0 name: "circle" }\n' + ITEMS.split("\n", 1)[1])


@case("label-map", BASE, CONFIG, LM + r"id -2 is not positive")
def label_map_negative_id(box):
    _label_map(box, ITEMS.replace("id: 2", "id: -2"))


@case("label-map", BASE, CONFIG, r"label_map\.pbtxt: cannot read the file \('utf-8' codec can't decode")
def label_map_not_utf8(box):
    _label_map(box, ITEMS.encode().replace(b"square", b"squ\xe9re"))


@case("label-map", BASE, CONFIG, LM + r"expected .*found end of file \(the 'item' message opened at 2:6 is not closed\)")
def label_map_truncated(box):
    _label_map(box, ITEMS[: ITEMS.index(" name: \"square\"")])


@case("label-map", BASE, CONFIG, LM + r"the label map has no items")
def label_map_empty(box):
    _label_map(box, b"# nothing\n")


@case("label-map", BASE, CONFIG, LM + r"id 4611686018427387904 does not fit the label map's int32 ids")
def label_map_id_huge(box):
    """An id past int32: with flags only it became num_classes and the class head was built (fixed)."""
    _label_map(box, ITEMS + "item { id: 4611686018427387904 name: 'x' }\n")


@case("label-map", BASE, FT + " --feature-extractor ssd_mobilenet_v1 --label-map-path {in}/label_map.pbtxt "
      "--train-input-path {in}/train.record", r"--num-classes: model\.ssd\.num_classes: num_classes 2147483647 \(at most 10000")
def label_map_id_int32_max_flags_only(box):
    """Flags only: num_classes is the label map's largest id, here 2**31 - 1."""
    _label_map(box, ITEMS + "item { id: 2147483647 name: 'x' }\n")


@case("label-map", BASE, CONFIG, LM + r"messages nested more than 100 levels deep")
def label_map_deeply_nested(box):
    _label_map(box, "item " + "{ item " * 10000 + "}" * 10000 + "\n")


# -- TFRecords of OD API examples ----------------------------------------------------------------
def _records(box, n: int = 8, name: str = "t.record", source: str = "train.record") -> Path:
    """The first ``n`` records of the base's ``source`` as a new TFRecord file ``IN/name``."""
    path = box.inp / name
    write_records(path, [r.data for r in islice(iter_records(box.inp / source), n)])
    return path


def _offsets(path: Path) -> list[tuple[int, int]]:
    """(header offset, data length) of every record."""
    return [(r.offset, r.length) for r in iter_records(path)]


def _patch(path: Path, at: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[at:at + len(data)] = data
    path.write_bytes(bytes(raw))


def _one_example(box, edit) -> None:
    """Records 1..7 as they are, record 0 replaced by ``edit(features)`` re-encoded (a valid frame)."""
    path = _records(box)
    records = [r.data for r in iter_records(path)]
    features = decode_example(records[0])
    edit(features)
    write_records(path, [encode_example(features) if isinstance(features, dict) else features] + records[1:])


@case("tfrecord", BASE, FLAGS, BAD + r"truncated record header \(5 of 12 bytes\) at the end of the file")
def record_truncated_header(box):
    path = _records(box, 2)
    second, _ = _offsets(path)[1]
    truncate(path, second + 5)


@case("tfrecord", BASE, FLAGS, BAD + r"truncated record: needs \d+ bytes, the file ends \d+ bytes after its header")
def record_truncated_payload(box):
    path = _records(box, 2)
    second, length = _offsets(path)[1]
    truncate(path, second + 12 + length // 2)


@case("tfrecord", BASE, FLAGS, BAD + r"corrupt length field \(checksum mismatch\); the remaining \d+ bytes")
def record_bad_length_crc(box):
    path = _records(box)
    third, _ = _offsets(path)[2]
    _patch(path, third + 8, b"\x00\x00\x00\x00")


@case("tfrecord", BASE, FLAGS, BAD + r"corrupt record data \(checksum mismatch\)")
def record_bad_data_crc(box):
    path = _records(box)
    _, length = _offsets(path)[0]
    raw = path.read_bytes()
    _patch(path, 12 + length // 2, bytes([raw[12 + length // 2] ^ 0xFF]))


@case("tfrecord", BASE, FLAGS, BAD + r"truncated record: needs 1152921504606846976 bytes")
def record_length_claims_2_to_60(box):
    """A length field of 2**60 with a valid checksum: read nothing, allocate nothing."""
    path = _records(box)
    length = struct.pack("<Q", 1 << 60)
    _patch(path, 0, length + struct.pack("<I", mask(crc32c(length))))


@case("tfrecord", BASE, FLAGS, r"1 bad record\(s\) in t\.record: t\.record: the file holds no records")
def record_file_empty(box):
    (box.inp / "t.record").write_bytes(b"")


@case("tfrecord", BASE, FLAGS, BAD + r"not a tf\.train\.Example \(")
def record_garbage_example(box):
    """A well-framed record whose payload is not a protobuf (a length running past the end)."""
    path = _records(box)
    records = [r.data for r in iter_records(path)]
    write_records(path, [b"\x0a\xff\xff\xff\x0f" + b"garbage" * 10] + records[1:])


@case("tfrecord", BASE, FLAGS, BAD + r"image/encoded is not a complete JPEG or PNG")
def record_image_not_an_image(box):
    def edit(features):
        features[KEYS["encoded"]] = ("bytes", [b"GIF89a" + b"\x00" * 64])

    _one_example(box, edit)


@case("tfrecord", BASE, FLAGS, BAD + r"box 0 \[nan, .*\] lies outside \[0, 1\]")
def record_box_nan(box):
    def edit(features):
        kind, values = features[KEYS["ymin"]]
        features[KEYS["ymin"]] = (kind, [float("nan")] + values[1:])

    _one_example(box, edit)


@case("tfrecord", BASE, FLAGS, BAD + r"box 0 \[.*\] lies outside \[0, 1\]")
def record_box_outside_unit_square(box):
    def edit(features):
        kind, values = features[KEYS["xmax"]]
        features[KEYS["xmax"]] = (kind, [7.5] + values[1:])

    _one_example(box, edit)


def _jpeg_claiming(image: bytes, height: int, width: int) -> bytes:
    """The JPEG with its SOF frame header patched to ``height`` x ``width`` (pixel data unchanged)."""
    data, pos = bytearray(image), 2
    while not (0xC0 <= data[pos + 1] <= 0xCF and data[pos + 1] not in (0xC4, 0xC8, 0xCC)):
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    data[pos + 5:pos + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@case("tfrecord", BASE, FLAGS, r"8 bad record\(s\) in t\.record: t\.record#0 \(offset 0\): the image does not decode")
def record_jpeg_claims_65000_square(box):
    """Every image's header (and image/height,width) claim 65000x65000 (12 GB of pixels): refused, not allocated."""
    path = _records(box)
    out = []
    for record in iter_records(path):
        features = decode_example(record.data)
        boxes = list(zip(*(features[KEYS[k]][1] for k in ("ymin", "xmin", "ymax", "xmax"))))
        image = _jpeg_claiming(features[KEYS["encoded"]][1][0], 65000, 65000)
        out.append(detection_example(image, height=65000, width=65000, boxes=boxes,
                                     classes=features[KEYS["label"]][1]))
    write_records(path, out)


@case("tfrecord", BASE, FLAGS + " --skip-bad-records", r"no usable records in .*t\.record \(8 read\)")
def record_skip_when_every_record_is_bad(box):
    path = _records(box)
    raw = bytearray(path.read_bytes())
    for offset, length in _offsets(path):
        raw[offset + 12] ^= 0xFF  # first payload byte: the data checksum no longer matches
    path.write_bytes(bytes(raw))


@case("tfrecord", BASE, FLAGS + " --skip-bad-records --eval-input-path {in}/e.record",
      r"no usable records in .*e\.record \(1 read\)")
def record_skip_then_eval_split_unusable(box):
    """--skip-bad-records skips train's bad record and goes on; the eval split's only record claims 2**60 bytes."""
    path = _records(box, 9)
    _, length = _offsets(path)[0]
    _patch(path, 12 + length // 2, b"\x00")
    eval_path = _records(box, 1, "e.record")
    header = struct.pack("<Q", 1 << 60)
    _patch(eval_path, 0, header + struct.pack("<I", mask(crc32c(header))))


@case("tfrecord", BASE, FT + " --feature-extractor ssd_mobilenet_v1 --label-map-path {in}/label_map.pbtxt "
      "--train-input-path {in}", r"1 train input path\(s\) match no file: --train-input-path: '.*/in'")
def record_path_is_a_directory(box):
    pass


@case("tfrecord", BASE, FLAGS, BAD + r"corrupt length field \(checksum mismatch\)")
def record_is_a_text_file(box):
    """A file of another kind (the pipeline.config) passed as TFRecords."""
    (box.inp / "t.record").write_bytes((box.inp / "pipeline.config").read_bytes())


@case("tfrecord", BASE, EVAL, BAD + r"corrupt record data \(checksum mismatch\)")
def record_damaged_eval_split(box):
    """``eval`` checks its splits before it builds a model or looks for a checkpoint."""
    path = _records(box)
    _, length = _offsets(path)[3]
    offset, _ = _offsets(path)[3]
    raw = path.read_bytes()
    _patch(path, offset + 12 + length - 1, bytes([raw[offset + 12 + length - 1] ^ 0x01]))

