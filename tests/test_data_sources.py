"""Sources: folders, TFRecords (and the writer), the built-in vgg_shapes builder, get_source."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_keras.data import pipeline, shapes, sources, tfrecords
from vgg_keras.data.testing import write_image_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    write_image_folder(str(root / "train"), num_classes=3, per_class=3, size=(20, 24))
    return str(root)


class _Context:
    def __init__(self, num_input_pipelines, input_pipeline_id):
        self.num_input_pipelines = num_input_pipelines
        self.input_pipeline_id = input_pipeline_id


def _examples(source):
    return list(source.dataset.as_numpy_iterator())


# ------------------------------------------------------------------------ folders


def test_folder_source_sorted_classes_extensions_and_labels(tmp_path):
    write_image_folder(str(tmp_path), num_classes=2, per_class=2, size=(8, 8))
    os.rename(tmp_path / "class_0", tmp_path / "zebra")
    os.rename(tmp_path / "class_1", tmp_path / "ant")
    (tmp_path / "ant" / "UPPER.JPG").write_bytes((tmp_path / "ant" / "img_000.jpg").read_bytes())
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    (tmp_path / "stray.jpg").write_bytes(b"")  # files at the top level are not classes
    source = sources.folder_source(str(tmp_path))
    assert source.class_names == ("ant", "zebra") and source.num_classes == 2
    assert source.num_examples == 5 and source.shard is None
    labels = [int(ex["label"]) for ex in _examples(source)]
    assert labels == [0, 0, 0, 1, 1]
    assert source.dataset.element_spec["image"].dtype == tf.string


def test_folder_source_rejects_missing_or_empty(tmp_path):
    with pytest.raises(ValueError, match="root"):
        sources.folder_source(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "empty_class")
    with pytest.raises(ValueError, match="no class sub-folders"):
        sources.folder_source(str(tmp_path))


# ---------------------------------------------------------------------- TFRecords


def test_write_and_read_tfrecords_round_trip(folder, tmp_path):
    root = os.path.join(folder, "train")
    shard_paths = tfrecords.write_tfrecords(root, str(tmp_path), num_shards=2, prefix="train")
    assert [os.path.basename(p) for p in shard_paths] == ["train-00000-of-00002", "train-00001-of-00002"]
    source = sources.tfrecord_source(str(tmp_path / "train-*"), num_classes=3)
    assert source.class_names == ("class_0", "class_1", "class_2")  # from labels.txt
    from_records = sorted((ex["image"], int(ex["label"])) for ex in _examples(source))
    from_folder = sorted((ex["image"], int(ex["label"])) for ex in _examples(sources.folder_source(root)))
    assert from_records == from_folder  # bytes untouched, labels 0-based
    # both shards mix classes (shuffled before sharding)
    per_shard = [sources.tfrecord_source(p, num_classes=3) for p in shard_paths]
    assert all(len({int(ex["label"]) for ex in _examples(s)}) > 1 for s in per_shard)


def test_tfrecord_label_offset_and_sharding(folder, tmp_path):
    root = os.path.join(folder, "train")
    tfrecords.write_tfrecords(root, str(tmp_path), num_shards=3, label_offset=1)
    pattern = str(tmp_path / "train-*")
    labels = sorted(
        int(ex["label"]) for ex in _examples(sources.tfrecord_source(pattern, num_classes=3, label_offset=1))
    )
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    everything = {ex["image"] for ex in _examples(sources.tfrecord_source(pattern, num_classes=3))}
    for num_shards in (3, 4):  # whole files per worker, then every n-th record
        shards = [
            [
                ex["image"]
                for ex in _examples(
                    sources.tfrecord_source(pattern, num_classes=3, input_context=_Context(num_shards, i))
                )
            ]
            for i in range(num_shards)
        ]
        flat = [b for shard in shards for b in shard]
        assert len(flat) == len(everything) and set(flat) == everything


def test_tfrecord_and_writer_reject_bad_arguments(folder, tmp_path):
    with pytest.raises(ValueError, match="pattern"):
        sources.tfrecord_source(str(tmp_path / "nothing-*"), num_classes=2)
    tfrecords.write_tfrecords(os.path.join(folder, "train"), str(tmp_path), num_shards=1)
    with pytest.raises(ValueError, match="class_names"):
        sources.tfrecord_source(str(tmp_path / "train-*"), num_classes=2, class_names=["a"])
    with pytest.raises(ValueError, match="num_shards"):
        tfrecords.write_tfrecords(folder, str(tmp_path), num_shards=0)


# ----------------------------------------------------------------- built-in data


def test_generate_example_deterministic_and_labelled():
    a = shapes.generate_example("train", 13)
    assert a == shapes.generate_example("train", 13)
    assert a["image"] != shapes.generate_example("validation", 13)["image"]
    assert a["label"] == 13 % len(shapes.CLASS_NAMES) and len(shapes.CLASS_NAMES) >= 10
    with pytest.raises(ValueError, match="split"):
        shapes.generate_example("test", 0)


def test_generated_bbox_encloses_the_object():
    """The object's colour differs from the background inside its box, not outside."""
    solid = [shapes.CLASS_NAMES.index(n) for n in ("circle", "square", "hexagon", "heart")]
    for index in [k + 12 * r for k in solid for r in range(3)]:
        example = shapes.generate_example("validation", index)
        image = np.asarray(Image.open(io.BytesIO(example["image"])), np.float32)
        h, w = example["shape"]
        assert image.shape == (h, w, 3) and 100 <= h <= 200 and 100 <= w <= 200
        ymin, xmin, ymax, xmax = example["bbox"]
        assert 0 <= ymin < ymax <= 1 and 0 <= xmin < xmax <= 1
        inside = np.zeros((h, w), bool)
        inside[int(ymin * h) + 1 : int(ymax * h) - 1, int(xmin * w) + 1 : int(xmax * w) - 1] = True
        centre = image[int((ymin + ymax) / 2 * h), int((xmin + xmax) / 2 * w)]
        outside = image[~inside].mean(axis=0)
        assert np.linalg.norm(centre - outside) > 50, index


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_builtin_builder_tiny_config(tiny_dir):
    source = sources.builtin_source("train", data_dir=tiny_dir, config="tiny")
    assert os.path.isdir(os.path.join(tiny_dir, "vgg_shapes", "tiny"))
    assert source.num_examples == 48 and source.num_classes == len(shapes.CLASS_NAMES)
    assert source.class_names == shapes.CLASS_NAMES
    examples = _examples(source)
    labels = sorted(int(ex["label"]) for ex in examples)
    assert labels == sorted(list(range(12)) * 4)  # balanced
    for ex in examples[:5]:
        assert ex["image"][:2] == b"\xff\xd8"  # still JPEG-encoded
        ymin, xmin, ymax, xmax = ex["bbox"]
        assert 0 <= ymin < ymax <= 1 and 0 <= xmin < xmax <= 1
    validation = sources.get_source("vgg_shapes/tiny", "validation", data_dir=tiny_dir)
    assert validation.num_examples == 24
    # the stored bytes are exactly the generator's output
    generated = {shapes.generate_example("validation", i)["image"] for i in range(24)}
    assert {ex["image"] for ex in _examples(validation)} == generated
    ds = pipeline.train_dataset(source, batch_size=8, crop_size=32, scale=(36, 48), seed=0)
    assert next(iter(ds))[0].shape == (8, 32, 32, 3)


def test_builtin_source_sharded_disjoint_and_covering(tiny_dir):
    full = {ex["image"] for ex in _examples(sources.builtin_source("validation", data_dir=tiny_dir, config="tiny"))}
    shards = [
        [
            ex["image"]
            for ex in _examples(
                sources.builtin_source("validation", data_dir=tiny_dir, config="tiny", input_context=_Context(2, i))
            )
        ]
        for i in range(2)
    ]
    assert len(shards[0]) + len(shards[1]) == len(full) == 24
    assert set(shards[0]) | set(shards[1]) == full
    with pytest.raises(ValueError, match="config"):
        sources.builtin_source("train", data_dir=tiny_dir, config="huge")


# ------------------------------------------------------------------- get_source


def test_get_source_dispatch(folder, tmp_path):
    by_split = sources.get_source(f"folder:{folder}", "train")
    assert by_split.num_examples == 9
    direct = sources.get_source(f"folder:{folder}/train", "validation")
    assert direct.num_examples == 9
    tfrecords.write_tfrecords(os.path.join(folder, "train"), str(tmp_path), num_shards=1, prefix="validation")
    records = sources.get_source(f"tfrecord:{tmp_path}/{{split}}-*", "validation", num_classes=3)
    assert len(_examples(records)) == 9
    for bad in ("", "folder:", "tfrecord:"):
        with pytest.raises(ValueError, match="name"):
            sources.get_source(bad, "train")


def test_get_source_takes_data_dir_for_every_kind_of_name(tmp_path):
    """Recipes pass their --data_dir whatever the dataset; folder names carry their own path."""
    folder = tmp_path / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        (folder / label / "x.png").write_bytes(b"")
    source = sources.get_source(f"folder:{folder}", "train", data_dir=str(tmp_path / "tfds"), manual_dir="")
    assert source.class_names == ("a", "b")
