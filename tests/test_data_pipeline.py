"""tf.data pipelines: fused decode-and-crop, train/eval datasets, sharding, bad input."""

import os

import numpy as np
import pytest
import tensorflow as tf

from vgg_keras import data
from vgg_keras.data import augment, crops, pipeline, sources
from vgg_keras.data.testing import encode, run_eager_and_in_dataset, smooth_image, write_image_folder

SEED = tf.constant([3, 4], tf.int64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("images"))
    write_image_folder(root, num_classes=3, per_class=5, size=(48, 64))
    return root


@pytest.fixture(scope="module")
def source(folder):
    return sources.folder_source(folder)


class _Context:
    """A stand-in for tf.distribute.InputContext (same attributes and method)."""

    def __init__(self, num_input_pipelines, input_pipeline_id, num_replicas=None):
        self.num_input_pipelines = num_input_pipelines
        self.input_pipeline_id = input_pipeline_id
        self.num_replicas_in_sync = num_replicas or num_input_pipelines

    def get_per_replica_batch_size(self, global_batch_size):
        return global_batch_size // self.num_replicas_in_sync


# --------------------------------------------------------- fused decode-and-crop


@pytest.mark.parametrize("scale", [40, 70])
def test_fused_jpeg_crop_equals_decode_then_crop(scale):
    image = smooth_image(96, 128, seed=5, cycles=1.0)
    jpeg = tf.constant(encode(image, "JPEG", quality=95))
    for i in range(4):
        seed = tf.constant([i, 1], tf.int64)
        fused = pipeline.decode_and_random_crop(jpeg, 32, scale, seed).numpy()
        if i == 0:
            _, fused_in_ds = run_eager_and_in_dataset(
                lambda e, s: pipeline.decode_and_random_crop(e, 32, scale, s), jpeg, seed
            )
            np.testing.assert_allclose(fused, fused_in_ds, atol=1e-3)
        assert fused.shape == (32, 32, 3) and fused.dtype == np.float32
        # reference: the paper's definition -- decode whole, rescale to S, crop
        oy, ox, size, _ = augment.crop_window(tf.constant([96, 128]), scale, 32, seed).numpy()
        factor = scale / 96
        full = crops.resize_smallest_side(tf.io.decode_jpeg(jpeg, channels=3), scale).numpy()
        top, left = int(round(oy * factor)), int(round(ox * factor))
        top, left = min(top, full.shape[0] - 32), min(left, full.shape[1] - 32)
        reference = full[top : top + 32, left : left + 32]
        # same window up to sub-pixel rounding and resize-order interpolation
        assert np.abs(fused - reference).mean() < 3.0
        # decoding whole then slicing the same window: identical up to JPEG edge upsampling
        whole = tf.io.decode_jpeg(jpeg, channels=3)[oy : oy + size, ox : ox + size]
        sliced = tf.image.resize(tf.cast(whole, tf.float32), [32, 32], antialias=True).numpy()
        assert np.abs(fused - sliced).mean() < 1.0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_crop_window_is_the_normalised_window_of_the_crop(fmt):
    encoded = tf.constant(encode(smooth_image(96, 128, seed=7), fmt))
    image, window = pipeline.decode_and_random_crop_window(encoded, 32, 40, SEED)
    np.testing.assert_array_equal(image.numpy(), pipeline.decode_and_random_crop(encoded, 32, 40, SEED).numpy())
    top, left, height, width = augment.crop_window(tf.constant([96, 128]), 40, 32, SEED).numpy()
    np.testing.assert_allclose(window.numpy(), [top / 96, left / 128, height / 96, width / 128], rtol=1e-6)


def test_non_jpeg_path_matches_jpeg_path():
    image = smooth_image(96, 128, seed=6)
    png = pipeline.decode_and_random_crop(tf.constant(encode(image, "PNG")), 32, 40, SEED)
    jpg = pipeline.decode_and_random_crop(tf.constant(encode(image, "JPEG", quality=95)), 32, 40, SEED)
    assert np.abs(png.numpy() - jpg.numpy()).mean() < 3.0


# ------------------------------------------------------------------------ train


def test_train_dataset_static_shapes_range_and_labels(source):
    ds = pipeline.train_dataset(source, batch_size=4, crop_size=32, scale=(36, 48), seed=0)
    assert ds.element_spec[0].shape == (4, 32, 32, 3)
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].dtype == tf.int32
    images, labels = next(iter(ds))
    assert images.numpy().min() >= 0 and images.numpy().max() <= 255
    assert set(labels.numpy()) <= {0, 1, 2}


def _first_batches(ds, n=3):
    return [tuple(t.numpy() for t in batch) for batch in ds.take(n)]


def test_train_dataset_deterministic_with_seed(source):
    def make(seed, **kwargs):
        return pipeline.train_dataset(source, batch_size=5, crop_size=24, scale=(24, 40), seed=seed, **kwargs)

    a, b, c = _first_batches(make(1)), _first_batches(make(1)), _first_batches(make(2))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    batched_a = _first_batches(make(1, augment_batches=True))
    batched_b = _first_batches(make(1, augment_batches=True))
    np.testing.assert_array_equal(batched_a[0][0], batched_b[0][0])


def test_train_dataset_epochs_cover_source_without_repeat(source):
    ds = pipeline.train_dataset(
        source, batch_size=4, crop_size=24, scale=24, seed=0, repeat=False, drop_remainder=False, shuffle_buffer=100
    )
    labels = np.concatenate([y for _, y in ds.as_numpy_iterator()])
    assert sorted(labels) == sorted([0] * 5 + [1] * 5 + [2] * 5)


def test_train_dataset_preprocess_and_options(source):
    ds = pipeline.train_dataset(
        source,
        batch_size=2,
        crop_size=24,
        scale=24,
        seed=0,
        preprocess=lambda x: x / 127.5 - 1.0,
        color_shift_std=0.0,
        num_threads=1,
    )
    images, _ = next(iter(ds))
    assert images.numpy().min() >= -1.0 and images.numpy().max() <= 1.0
    assert ds.options().threading.private_threadpool_size == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scale": 20}, "scale"),
        ({"scale": (50, 40)}, "s_min"),
        ({"scale": "x"}, "scale"),
        ({"batch_size": 0}, "batch_size"),
        ({"crop_size": 0}, "crop_size"),
        ({"color_shift_std": -1}, "color_shift_std"),
        ({"shuffle_buffer": -1}, "shuffle_buffer"),
    ],
)
def test_train_dataset_rejects_bad_arguments(source, kwargs, match):
    args = {"batch_size": 2, "crop_size": 24, "scale": 32, **kwargs}
    with pytest.raises(ValueError, match=match):
        pipeline.train_dataset(source, **args)


def test_train_dataset_rejects_non_source_and_bad_preprocess(source):
    with pytest.raises(TypeError, match="source"):
        pipeline.train_dataset(tf.data.Dataset.range(3), batch_size=2)
    with pytest.raises(TypeError, match="preprocess"):
        pipeline.train_dataset(source, batch_size=2, crop_size=24, scale=24, preprocess=3)


# ------------------------------------------------------------------ sharding


def _image_bytes(source):
    return [ex["image"] for ex in source.dataset.as_numpy_iterator()]


@pytest.mark.parametrize("num_shards", [2, 4])
def test_folder_source_shards_disjoint_and_covering(folder, num_shards):
    everything = _image_bytes(sources.folder_source(folder))
    shards = [
        _image_bytes(sources.folder_source(folder, input_context=_Context(num_shards, i))) for i in range(num_shards)
    ]
    flat = [b for shard in shards for b in shard]
    assert len(flat) == len(everything) and set(flat) == set(everything)


def test_train_dataset_shards_and_per_replica_batch(source, folder):
    context = _Context(2, 1)
    ds = pipeline.train_dataset(
        source, batch_size=4, crop_size=24, scale=24, seed=0, input_context=context, repeat=False, drop_remainder=False
    )
    labels = np.concatenate([y for _, y in ds.as_numpy_iterator()])
    assert ds.element_spec[0].shape[0] is None and len(labels) == 7  # shard 1 of 15
    sharded = sources.folder_source(folder, input_context=context)
    assert (
        pipeline.train_dataset(sharded, batch_size=4, crop_size=24, scale=24, input_context=context)
        .element_spec[0]
        .shape[0]
        == 2
    )
    with pytest.raises(ValueError, match="shard"):
        pipeline.train_dataset(sharded, batch_size=4, crop_size=24, scale=24, input_context=_Context(2, 0))


# ---------------------------------------------------------------------- eval


def test_eval_dataset_centre_crops_in_order_without_drop(source, folder):
    ds = pipeline.eval_dataset(source, batch_size=4, scale=40, crop_size=32)
    batches = list(ds.as_numpy_iterator())
    assert [len(y) for _, y in batches] == [4, 4, 4, 3]
    images = np.concatenate([x for x, _ in batches])
    first = tf.io.read_file(os.path.join(folder, "class_0", "img_000.jpg"))
    expected = crops.center_crop(crops.resize_smallest_side(crops.decode_image(first), 40), 32)
    np.testing.assert_allclose(images[0], expected, atol=1e-3)
    labels = np.concatenate([y for _, y in batches])
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 5))


def test_dense_and_multicrop_examples(source):
    image, label = next(iter(pipeline.dense_eval_examples(source, scale=40)))
    assert image.shape == (40, 53, 3) and label.dtype == tf.int32  # 48x64 -> 40x53
    multi = pipeline.multicrop_eval_examples(source, scale=40, crop_size=32)
    crops_, _ = next(iter(multi))
    assert crops_.shape == (50, 32, 32, 3)
    np.testing.assert_allclose(crops_[25], crops_[0][:, ::-1], atol=1e-5)
    np.testing.assert_allclose(crops_[0], image[:32, :32], atol=1e-3)
    with pytest.raises(ValueError, match="scale"):
        pipeline.multicrop_eval_examples(source, scale=30, crop_size=32)


# ------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """Good images in every odd encoding, plus three undecodable files."""
    root = tmp_path_factory.mktemp("messy")
    os.makedirs(root / "a")
    os.makedirs(root / "b")
    image = smooth_image(48, 64, seed=9)
    good = encode(image)
    files = {
        "a/01_ok.jpg": good,
        "a/02_png_named_jpg.jpg": encode(image, "PNG"),
        "a/03_cmyk.jpg": encode(image, mode="CMYK"),
        "a/04_gray.jpg": encode(image, mode="L"),
        "a/05_tiny.jpg": encode(smooth_image(6, 9)),  # smaller than the crop
        "a/06_gif.gif": encode(image, "GIF"),
        "b/07_bmp.BMP": encode(image, "BMP"),
        "b/08_truncated.jpg": good[: len(good) // 2],  # bad
        "b/09_empty.jpg": b"",  # bad
        "b/10_garbage.png": b"this is not an image",  # bad
    }
    for name, content in files.items():
        (root / name).write_bytes(content)
    return str(root)


def test_bad_inputs_are_skipped_and_the_rest_decoded(messy_folder):
    source = sources.folder_source(messy_folder)
    assert source.num_examples == 10
    train = pipeline.train_dataset(
        source, batch_size=3, crop_size=32, scale=(32, 48), seed=0, repeat=False, drop_remainder=False, shuffle_buffer=0
    )
    images = np.concatenate([x for x, _ in train.as_numpy_iterator()])
    assert images.shape == (7, 32, 32, 3) and np.isfinite(images).all()
    evaluation = pipeline.eval_dataset(source, batch_size=4, scale=40, crop_size=32)
    images = np.concatenate([x for x, _ in evaluation.as_numpy_iterator()])
    assert images.shape == (7, 32, 32, 3)
    # every decodable image looks like the original (colour and orientation preserved)
    original = smooth_image(48, 64, seed=9)
    reference = crops.center_crop(crops.resize_smallest_side(original, 40), 32)
    for i in (0, 1, 2, 5, 6):  # jpeg, png named .jpg, cmyk, gif, bmp (4 is the tiny one)
        assert np.abs(images[i] - reference.numpy()).mean() < 12, i
    gray = images[3]
    np.testing.assert_allclose(gray[..., 0], gray[..., 1], atol=1e-3)
    assert data.find_undecodable(source) == [7, 8, 9]


@pytest.fixture(scope="module")
def truncated_folder(tmp_path_factory):
    """Tall 320x32 JPEGs, one per class: even classes whole, odd ones cut at 85% of their bytes."""
    root = tmp_path_factory.mktemp("truncated")
    for index in range(8):
        encoded = encode(smooth_image(320, 32, seed=index))
        (root / f"class{index}").mkdir()
        (root / f"class{index}" / "image.jpg").write_bytes(
            encoded[: int(len(encoded) * 0.85)] if index % 2 else encoded
        )
    return str(root)


def _labels(dataset: tf.data.Dataset) -> set[int]:
    return {int(label) for _, labels in dataset.as_numpy_iterator() for label in np.ravel(labels)}


def test_one_skip_policy_a_truncated_jpeg_is_skipped_everywhere_and_listed(truncated_folder):
    source = sources.folder_source(truncated_folder)
    label_of = [int(example["label"]) for example in source.dataset]
    listed = {label_of[index] for index in data.find_undecodable(source)}
    assert listed == {1, 3, 5, 7}
    truncated = tf.io.read_file(os.path.join(truncated_folder, "class1", "image.jpg"))
    # Its top rows are readable, so a window there decoded alone succeeds...
    assert tf.image.decode_and_crop_jpeg(truncated, [0, 0, 32, 32]).shape == (32, 32, 3)
    # ...yet the training op fails wherever the random window lies, as a full decode does.
    for seed in range(6):
        with pytest.raises(tf.errors.InvalidArgumentError):
            pipeline.decode_and_random_crop(truncated, 32, 32, tf.constant([seed, 1], tf.int64))
    expected_kept = set(range(8)) - listed
    for seed in range(3):
        train = pipeline.train_dataset(
            source,
            batch_size=2,
            crop_size=32,
            scale=(32, 40),
            seed=seed,
            repeat=False,
            drop_remainder=False,
            shuffle_buffer=0,
        )
        assert _labels(train) == expected_kept, seed
    assert _labels(pipeline.eval_dataset(source, batch_size=4, scale=32, crop_size=32)) == expected_kept
    assert _labels(pipeline.dense_eval_examples(source, scale=32)) == expected_kept
    assert _labels(pipeline.multicrop_eval_examples(source, scale=32, crop_size=32, grid=2)) == expected_kept
