"""finetune.data: label maps, TFRecords, record checks, input pipelines and the shapes fixtures."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.config import ConfigError, load_pipeline_config, overrides, read_pipeline_config, schema
from finetune.data import (
    DataError, LabelMap, LabelMapError, classification_dataset, classification_example, dataset_from_config,
    decode_example,
    detection_dataset, detection_example, encode_example, encode_image, iter_records, load_label_map,
    read_label_map, write_records,
)
from fixtures import _detection_data as shapes

SMALL = {"train": 24, "val": 8}
ALL_AUGMENTATIONS = ["random_horizontal_flip", "random_vertical_flip", "ssd_random_crop", "random_crop_image",
                     "random_adjust_brightness", "random_adjust_contrast", "random_adjust_saturation",
                     "random_adjust_hue"]


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory, tf):
    out = tmp_path_factory.mktemp("detection_shapes")
    shapes.write_detection_shapes(out, splits=SMALL)
    (out / "pipeline.config").write_text(shapes.pipeline_config_text())
    return out


@pytest.fixture(scope="module")
def jpeg(tf):
    return encode_image(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))


def _damaged(jpeg: bytes) -> bytes:
    """Header and end marker intact, entropy-coded data broken: only a full decode notices."""
    middle = len(jpeg) // 2
    return jpeg[:middle] + bytes([0xD0, 0xFF] * 20) + jpeg[middle + 40:]


def _example(jpeg, boxes=((0.1, 0.1, 0.5, 0.5),), classes=(1,), texts=None, **kw):
    texts = [shapes.CLASSES[c - 1] for c in classes] if texts is None else texts
    return detection_example(kw.pop("image", jpeg), height=kw.pop("height", 32), width=32, boxes=boxes,
                             classes=classes, texts=texts, **kw)


# ----------------------------------------------------------------- label maps
def test_label_map_reads_items_and_round_trips(tmp_path):
    text = "item { id: 2 name: 'square' display_name: 'Square' }\nitem {\n  name: \"circle\"\n  id: 1\n}\n" \
           "item { id: 0 name: 'background' }\n"
    label_map = read_label_map(text)
    assert label_map.ids == (1, 2) and label_map.names == ("circle", "square")
    assert (label_map.max_id, label_map.item(2).text, label_map.id_of("Square", use_display_name=True)) \
        == (2, "Square", 2)
    path = label_map.write(tmp_path / "label_map.pbtxt")
    again = load_label_map(path)
    assert [(i.id, i.name, i.display_name) for i in again.items] == [(1, "circle", ""), (2, "square", "Square")]


@pytest.mark.parametrize("text, message", [
    ("item { id: 1 name: 'a' }\nitem { id: 1 name: 'b' }",
     r"^m.pbtxt:2:1: id 1 is used twice \(items at lines 1 and 2\)"),
    ("item { id: 0 name: 'a' }", r"^m.pbtxt:1:1: id 0 is not positive"),
    ("item { id: -3 name: 'a' }", r"^m.pbtxt:1:1: id -3 is not positive"),
    ("item { name: 'a' }", r"^m.pbtxt:1:1: item has no id"),
    ("item { id: 1 name: 'a' colour: 'red' }", r"^m.pbtxt:1:24: unknown item field 'colour'"),
    ("item { id: '1' name: 'a' }", r"^m.pbtxt:1:8: id must be an integer, found '1'"),
    ("item { id: 1 name: 'a' }\nitem { id: 2 name: 'a' }", r"^m.pbtxt:2:1: name 'a' is used twice"),
    ("", r"^m.pbtxt:1:1: the label map has no items"),
    ("item { id: 1 name: 'a' ", r"^m.pbtxt:1:24: expected a field name or '}'"),
    ("item { id: 0 name: 'x' }\nitem { id: 0 name: 'y' }", r"^m.pbtxt: 2 problems: 1:1 id 0 is not positive"),
])
def test_label_map_errors_name_the_line(text, message):
    with pytest.raises(Exception, match=message) as info:
        read_label_map(text, "m.pbtxt")
    assert info.value.exit_code == 2


def test_label_map_missing_file_and_num_classes(tmp_path):
    with pytest.raises(LabelMapError, match=r"missing.pbtxt: label map not found; check label_map_path"):
        load_label_map(tmp_path / "missing.pbtxt")
    with pytest.raises(LabelMapError, match=r"ids go up to 3 but pipeline.config has num_classes 2"):
        LabelMap.from_names(shapes.CLASSES).check_num_classes(2)


# ----------------------------------------------------------------- records and examples
def test_native_example_encoding_is_tensorflows(tf):
    features = {"image/encoded": ("bytes", [b"\xff\xd8x"]), "image/object/bbox/xmin": ("float", [0.25, 1.0]),
                "image/object/class/label": ("int64", [1, -3, 2 ** 40]), "image/object/class/text": ("bytes", []),
                "empty": ("float", [])}
    data = encode_example(features)
    example = tf.train.Example.FromString(data)
    assert example.SerializeToString(deterministic=True) == data
    assert decode_example(example.SerializeToString()) == {
        k: (kind, [v.encode() if isinstance(v, str) else v for v in values]) for k, (kind, values) in features.items()}


def test_tfrecord_framing_matches_tensorflow(tmp_path, tf):
    ours, theirs = tmp_path / "ours.record", tmp_path / "theirs.record"
    write_records(ours, [b"one", b"", b"three" * 100])
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for data in (b"one", b"", b"three" * 100):
            writer.write(data)
    assert ours.read_bytes() == theirs.read_bytes()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == [b"one", b"", b"three" * 100]
    assert [(r.index, r.offset, r.data) for r in iter_records(theirs)][:2] == [(0, 0, b"one"), (1, 19, b"")]


def test_framing_damage_is_located(tmp_path):
    path = tmp_path / "x.record"
    write_records(path, [b"a" * 10, b"b" * 10, b"c" * 10])
    raw = bytearray(path.read_bytes())
    raw[12 + 3] ^= 1  # data of record 0
    raw[26 + 2] ^= 1  # length of record 1: the rest is lost
    path.write_bytes(bytes(raw))
    records = list(iter_records(path))
    assert [(r.index, r.problem.split(" (")[0]) for r in records] == [
        (0, "corrupt record data"), (1, "corrupt length field")]
    assert "remaining 52 bytes" in records[1].problem


# ----------------------------------------------------------------- validation
def _scan_error(tmp_path, jpeg, records, label_map=None, **kw):
    path = tmp_path / "bad.record"
    write_records(path, records)
    detection_dataset(path, label_map or LabelMap.from_names(shapes.CLASSES), batch_size=1, image_size=32, **kw)


@pytest.mark.parametrize("make, error, message", [
    (lambda j: _example(j, boxes=[(0.1, 0.2, 0.5, 1.3)]), DataError, r"box 0 .* lies outside \[0, 1\]"),
    (lambda j: _example(j, boxes=[(0.1, 0.7, 0.5, 0.2)]), DataError, r"box 0 has xmin > xmax"),
    (lambda j: _example(j, boxes=[(0.6, 0.1, 0.5, 0.2)]), DataError, r"box 0 has ymin > ymax"),
    (lambda j: _example(j, image=j[:len(j) // 2]), DataError, r"not a complete JPEG or PNG"),
    (lambda j: _example(j, image=_damaged(j)), DataError, r"the image does not decode"),
    (lambda j: _example(j, height=64), DataError, r"image/height,width say 64x32 but the JPEG is 32x32"),
    (lambda j: _example(j, texts=[]) .replace(b"image/object/class/label", b"image/object/class/LABEL"),
     DataError, r"1 boxes but 0 class labels"),
    (lambda j: b"not a proto", DataError, r"not a tf.train.Example"),
    (lambda j: _example(j, classes=(7,), texts=["circle"]), LabelMapError,
     r"label map does not match the records: bad.record#0 \(offset 0\): class id 7 is not in the label map "
     r"\(ids 1..3\)"),
    (lambda j: _example(j, classes=(1,), texts=["square"]), LabelMapError,
     r"box 0 is class 1 'square' but the label map names id 1 'circle'"),
])
def test_each_validation_error(tmp_path, jpeg, make, error, message):
    with pytest.raises(error, match=message) as info:
        _scan_error(tmp_path, jpeg, [make(jpeg)])
    text = str(info.value)
    assert "\n" not in text and info.value.exit_code == 2
    if error is DataError:
        assert "bad.record#0 (offset 0)" in text and "--skip-bad-records" in text


def test_label_mismatch_is_not_skipped(tmp_path, jpeg):
    with pytest.raises(LabelMapError, match="use the label map the records were written with"):
        _scan_error(tmp_path, jpeg, [_example(jpeg, classes=(1,), texts=["dog"])], skip_bad_records=True)


def test_empty_and_missing_files(tmp_path, jpeg):
    write_records(tmp_path / "empty.record", [])
    with pytest.raises(DataError, match=r"1 bad record\(s\) in empty.record: empty.record: the file holds no records"):
        detection_dataset(tmp_path / "empty.record", LabelMap.from_names("ab"), batch_size=1, image_size=8)
    with pytest.raises(DataError, match=r"no usable records in .*empty.record \(0 read\)"):
        detection_dataset(tmp_path / "empty.record", LabelMap.from_names("ab"), batch_size=1, image_size=8,
                          skip_bad_records=True)
    with pytest.raises(DataError, match=r"TFRecord path\(s\) not found: .*nothing-\*.record"):
        detection_dataset(tmp_path / "nothing-*.record", LabelMap.from_names("ab"), batch_size=1, image_size=8)


def test_skip_bad_records_counts_each_kind(tmp_path, jpeg):
    good = [_example(jpeg, boxes=[(0.1, 0.1, 0.2 + i / 20, 0.4)], classes=(1 + i % 3,)) for i in range(6)]
    bad = [_example(jpeg, boxes=[(0.1, 0.9, 0.2, 0.4)]), _example(jpeg, image=jpeg[:200]), b"junk"]
    path = tmp_path / "mixed.record"
    write_records(path, good[:3] + bad + good[3:] + [good[0]])
    raw = bytearray(path.read_bytes())
    last = len(raw) - len(good[0]) - 4
    raw[last] ^= 0xFF  # damage the last record's data
    path.write_bytes(bytes(raw))
    write_records(tmp_path / "empty.record", [])
    data = detection_dataset([path, tmp_path / "empty.record"], LabelMap.from_names(shapes.CLASSES), batch_size=2,
                             image_size=32, skip_bad_records=True, shuffle_seed=0)
    stats = data.stats
    assert (stats.files, stats.records, stats.used, stats.skipped_total) == (2, 10, 6, 5)
    assert stats.skipped == {"bad_box": 1, "unreadable_image": 1, "not_an_example": 1, "corrupt_record": 1,
                             "empty_file": 1}
    assert stats.objects_per_class == {1: 2, 2: 2, 3: 2}
    assert stats.summary() == ("6 of 10 records in 2 file(s) used; skipped: 1 bad_box, 1 corrupt_record, "
                               "1 empty_file, 1 not_an_example, 1 unreadable_image")
    assert stats.to_dict()["problems"][0].startswith("mixed.record#3 (offset ")
    assert sum(int(b["image"].shape[0]) for b in data.dataset_for_epoch(0)) == 6


# ----------------------------------------------------------------- pipelines
def test_detection_batches(shapes_dir):
    data = detection_dataset(shapes_dir / "val.record", shapes_dir / "label_map.pbtxt", batch_size=3,
                             image_size=(64, 48), max_boxes=6)
    assert (data.num_examples, data.steps_per_epoch, data.drop_remainder) == (8, 3, False)
    batches = list(data.dataset_for_epoch(0))
    first = batches[0]
    assert first["image"].shape == (3, 64, 48, 3) and first["image"].dtype.name == "float32"
    assert first["boxes"].shape == (3, 6, 4) and first["classes"].dtype.name == "int32"
    assert -1.0 <= float(np.min(first["image"])) < float(np.max(first["image"])) <= 1.0
    mask, classes, num = first["mask"].numpy(), first["classes"].numpy(), first["num_boxes"].numpy()
    assert (mask.sum(1) == num).all() and ((classes > 0) == mask).all()
    assert [int(b["image"].shape[0]) for b in batches] == [3, 3, 2]
    assert [s.decode() for b in batches for s in b["source_id"].numpy()] == [f"val/{i}" for i in range(8)]
    records = [decode_example(r.data) for r in iter_records(shapes_dir / "val.record")][:3]
    for row, features in enumerate(records):
        expected = np.stack([features[f"image/object/bbox/{k}"][1] for k in ("ymin", "xmin", "ymax", "xmax")], 1)
        np.testing.assert_allclose(first["boxes"][row, :num[row]], expected, atol=1e-6)


def test_dataset_from_config(shapes_dir):
    config = overrides(load_pipeline_config(shapes_dir / "pipeline.config", strict=True), batch_size=4)
    train = dataset_from_config(config, "train", shuffle_seed=5)
    assert (train.batch_size, train.image_size, train.max_boxes, train.shuffle_seed) == (4, (128, 128), 8, 5)
    assert [o.PROTO for o in train.augment] == ["random_horizontal_flip", "ssd_random_crop",
                                                "random_adjust_brightness"]
    evaluation = dataset_from_config(config, "eval")
    assert (evaluation.num_examples, evaluation.batch_size, evaluation.shuffle_seed, evaluation.augment) == \
        (8, 1, None, ())
    with pytest.raises(LabelMapError, match="ids go up to 3 but .*pipeline.config has num_classes 2"):
        dataset_from_config(overrides(config, num_classes=2))
    with pytest.raises(ConfigError, match="not an SSD model"):
        dataset_from_config(read_pipeline_config("model { faster_rcnn { } }"))


def test_augmentation_keeps_boxes_valid(shapes_dir):
    data = detection_dataset(shapes_dir / "train.record", shapes_dir / "label_map.pbtxt", batch_size=8,
                             image_size=64, augment=ALL_AUGMENTATIONS, shuffle_seed=3)
    for epoch in range(2):
        for batch in data.dataset_for_epoch(epoch):
            boxes, mask = batch["boxes"].numpy(), batch["mask"].numpy()
            real = boxes[mask]
            assert (real >= 0).all() and (real <= 1).all()
            assert (real[:, 0] <= real[:, 2]).all() and (real[:, 1] <= real[:, 3]).all()
            assert ((real[:, 2] - real[:, 0]) * (real[:, 3] - real[:, 1]) > 0).all()
            assert (boxes[~mask] == 0).all() and (batch["num_boxes"].numpy() >= 1).all()
            assert np.isfinite(batch["image"].numpy()).all()


def test_flip_and_crop_move_boxes_with_the_image(tf):
    from finetune.data import _augment

    image = tf.zeros([10, 20, 3])
    boxes = tf.constant([[0.1, 0.2, 0.5, 0.3]])
    options = (schema.RandomHorizontalFlip(probability=1.0), schema.RandomVerticalFlip(probability=1.0))
    _, flipped, _ = _augment.apply(options, image, boxes, tf.constant([1]), tf.constant([1, 2]))
    np.testing.assert_allclose(flipped.numpy(), [[0.5, 0.7, 0.9, 0.8]], atol=1e-6)
    window = tf.constant([0.0, 0.0, 0.5, 0.5])
    kept, classes = _augment.crop_boxes(tf.constant([[0.1, 0.1, 0.3, 0.3], [0.4, 0.4, 0.8, 0.8],
                                                     [0.6, 0.6, 0.9, 0.9]]), tf.constant([1, 2, 3]), window, 0.05)
    np.testing.assert_allclose(kept.numpy(), [[0.2, 0.2, 0.6, 0.6], [0.8, 0.8, 1.0, 1.0]], atol=1e-6)
    assert classes.numpy().tolist() == [1, 2]
    kept, _ = _augment.crop_boxes(tf.constant([[0.4, 0.4, 0.8, 0.8]]), tf.constant([2]), window, 0.3)
    assert kept.shape[0] == 0  # a 1/16 overlap is below the threshold


def test_order_and_augmentation_are_deterministic_per_seed_and_epoch(shapes_dir):
    two_crops = schema.SSDRandomCrop(schema.SSD_CROP_DEFAULTS[2:4])  # cheaper to trace than all seven
    def make(seed):
        return detection_dataset(shapes_dir / "train.record", shapes_dir / "label_map.pbtxt", batch_size=4,
                                 image_size=32, augment=["random_horizontal_flip", two_crops,
                                                         "random_adjust_brightness"], shuffle_seed=seed)

    def epoch(data, e, start_step=0):
        return [{k: v.numpy() for k, v in b.items()} for b in data.dataset_for_epoch(e, start_step=start_step)]

    a, b = make(11), make(11)
    first, again = epoch(a, 1), epoch(b, 1)
    assert len(first) == a.steps_per_epoch == 6
    for x, y in zip(first, again):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    resumed = epoch(a, 1, start_step=4)
    assert len(resumed) == 2 and all(np.array_equal(resumed[i][k], first[4 + i][k])
                                     for i in range(2) for k in first[0])
    ids = [b["record_id"].tolist() for b in first]
    assert ids != [b["record_id"].tolist() for b in epoch(a, 2)]
    assert ids != [b["record_id"].tolist() for b in epoch(make(12), 1)]
    assert sorted(sum(ids, [])) == list(range(24))


def test_one_stream_over_epochs_yields_each_epochs_batches(shapes_dir):
    def make(**kw):
        return detection_dataset(shapes_dir / "train.record", shapes_dir / "label_map.pbtxt", image_size=32,
                                 augment=["random_horizontal_flip", "random_adjust_brightness"], shuffle_seed=4, **kw)

    def arrays(batches):
        return [{k: v.numpy() for k, v in b.items()} for b in batches]

    def same(x, y):
        return len(x) == len(y) and all(np.array_equal(a[k], b[k]) for a, b in zip(x, y) for k in a)

    data = make(batch_size=4)  # 24 records: 6 batches per epoch
    per_epoch = arrays(data.dataset_for_epoch(1, start_step=4)) + arrays(data.dataset_for_epoch(2)) + \
        arrays(data.dataset_for_epoch(3))[:1]
    assert same(arrays(data.stream(1, start_step=4).take(9)), per_epoch)
    uneven = make(batch_size=5, drop_remainder=False)  # 4 batches of 5 and one of 4 per epoch
    streamed = arrays(uneven.stream(0).take(10))
    assert same(streamed, arrays(uneven.dataset_for_epoch(0)) + arrays(uneven.dataset_for_epoch(1)))
    assert [len(b["record_id"]) for b in streamed] == [5, 5, 5, 5, 4] * 2
    assert not same(streamed[:5], streamed[5:])  # a new order and new augmentation each epoch


def test_classification_dataset(tmp_path, tf):
    shapes.write_classify_shapes(tmp_path, splits={"train": 9})
    data = classification_dataset(tmp_path / "train.record", tmp_path / "label_map.pbtxt", batch_size=3,
                                  image_size=48, augment=["random_horizontal_flip", "random_crop_image"],
                                  shuffle_seed=0)
    batches = list(data.dataset_for_epoch(0))
    labels = np.concatenate([b["label"].numpy() for b in batches])
    assert sorted(labels.tolist()) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert all((b["class_index"].numpy() == b["label"].numpy() - 1).all() for b in batches)
    assert batches[0]["image"].shape == (3, 48, 48, 3)
    bad = tmp_path / "bad.record"
    write_records(bad, [classification_example(encode_image(np.zeros((8, 8, 3), np.uint8)), height=8, width=8,
                                               label=5)])
    with pytest.raises(LabelMapError, match=r"image/class/label 5 is not in the label map \(ids 1..3\)"):
        classification_dataset(bad, tmp_path / "label_map.pbtxt", batch_size=1, image_size=8)


# ----------------------------------------------------------------- the fixtures
def test_shapes_data_is_deterministic_and_described(tmp_path, shapes_dir):
    again = tmp_path / "again"
    again.mkdir()
    manifest = shapes.write_detection_shapes(again, splits=SMALL)
    for name in ("train.record", "val.record", "label_map.pbtxt", "manifest.json"):
        assert (again / name).read_bytes() == (shapes_dir / name).read_bytes(), name
    assert manifest["splits"]["val"]["records"] == 8
    records = [decode_example(r.data) for r in iter_records(again / "train.record")]
    counts = [len(r["image/object/class/label"][1]) for r in records]
    assert 1 <= min(counts) and max(counts) <= shapes.MAX_OBJECTS
    assert sum(counts) == sum(manifest["splits"]["train"]["objects"].values())
    assert {r["image/height"][1][0] for r in records} == {shapes.IMAGE_SIZE}


@pytest.mark.slow
def test_registered_entries_build(tmp_path):
    import fixtures
    from finetune.config import load_pipeline_config

    paths = fixtures.build(tmp_path, names=["detection_shapes", "classify_shapes"])
    config = load_pipeline_config(paths["detection_shapes"] / "pipeline.config", strict=True)
    label_map = load_label_map(config.path("train_input_reader.label_map_path"))
    label_map.check_num_classes(config.model.num_classes)
    data = detection_dataset(config.input_files("train"), label_map, batch_size=config.train_config.batch_size,
                             image_size=128, augment=config.train_config.data_augmentation_options, shuffle_seed=0)
    assert data.stats.used == shapes.SPLITS["train"] and not data.stats.skipped
    assert [p.name for p in config.input_files("eval")] == ["val.record"]
    assert "detection_shapes" not in fixtures.NAMES  # data sets are not checkpoints
