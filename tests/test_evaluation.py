"""Tests of the paper's evaluation protocol (vgg_keras.evaluation) on tiny models."""

import dataclasses
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_keras import models, preprocessing
from vgg_keras.data import crops as crops_lib
from vgg_keras.data.sources import Source
from vgg_keras.evaluation import forward, inputs, metrics, plots, protocol
from vgg_keras.evaluation.forward import prepare_model

CLASSES = 6
BASE = 64


def _randomise(model: keras.Model, seed: int = 0) -> keras.Model:
    """Random weights with non-zero biases, scaled so activations stay O(1).

    Non-zero biases matter: with zero biases relu(bias) == 0 and plain zero padding would
    already give exact dense results, so the masking would go untested.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (rng.uniform(0.5, 1.5, v.shape).astype("float32") for v in values)
            layer.set_weights([gamma, beta - 0.5, mean - 1.0, variance])
            continue
        kernel, bias = values[0], values[1]
        fan_in = int(np.prod(kernel.shape[:-1]))
        layer.set_weights(
            [
                rng.normal(0, np.sqrt(2.0 / fan_in), kernel.shape).astype("float32"),
                rng.normal(0.3, 0.3, bias.shape).astype("float32"),
            ]
            + values[2:]
        )
    return model


def _tiny(config="A", seed=0, **kwargs) -> keras.Model:
    kwargs.setdefault("input_shape", (BASE, BASE, 3))
    model = models.build(
        config, weights=None, width_multiplier=1 / 16, fc_units=32, base_size=BASE, classes=CLASSES, **kwargs
    )
    return _randomise(model, seed)


def _scores_runner(runner):
    """The same runner returning averaged raw class scores (no soft-max): a sharper comparison."""
    return dataclasses.replace(runner, activation=lambda scores: scores)


def _image(height, width, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype("float32")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _source(images, labels, num_classes=CLASSES) -> Source:
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": [_png(image) for image in images], "label": np.asarray(labels, np.int64)}
    )
    return Source(dataset, num_classes, tuple(f"c{i}" for i in range(num_classes)), len(images))


@pytest.fixture(scope="module")
def model():
    return _tiny()


@pytest.fixture(scope="module")
def runner(model):
    return prepare_model(model)


# --------------------------------------------------------------------------- crop grid


def test_multicrop_grid_positions_counts_and_flips():
    # Pixel values encode their coordinates, so each crop's origin can be read off.
    height, width, crop, scales = 70, 90, 32, (40, 48, 56)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype("uint8")
    source = _source([image], [0])
    batch = next(
        iter(
            inputs.eval_batches(
                source, scales=scales, kinds=["multicrop"], crop_size=crop, grid=5, flip=True, batch_size=1
            )
        )
    )
    total = 0
    for scale in scales:
        stack = batch[inputs.view_key("multicrop", scale)][0].numpy()
        assert stack.shape == (50, crop, crop, 3)
        total += stack.shape[0]
        resized = crops_lib.resize_smallest_side(tf.constant(image), scale).numpy()
        boxes = plots.crop_boxes(resized.shape[0], resized.shape[1], crop, 5)
        assert len(set(boxes)) == 25
        assert boxes[0] == (0, 0) and boxes[-1] == (resized.shape[0] - crop, resized.shape[1] - crop)
        for index, (top, left) in enumerate(boxes):
            window = resized[top : top + crop, left : left + crop]
            np.testing.assert_array_equal(stack[index], window)
            np.testing.assert_array_equal(stack[25 + index], window[:, ::-1])
        # Every crop appears once plain and once mirrored, never twice the same way.
        keys = {stack[i].tobytes() for i in range(50)}
        assert len(keys) == 50
    assert total == 150


def test_report_counts_150_crops_for_three_scales(runner):
    images = [_image(80, 100, 1)]
    report = protocol.evaluate(
        runner,
        _source(images, [1]),
        methods="multicrop",
        scales=(64, 72, 80),
        crop_size=BASE,
        num_samples=0,
        progress=False,
    )
    assert report.rows[0]["crops_per_image"] == 150
    assert report.rows[0]["num_images"] == 1


def test_multicrop_averages_the_crops_posteriors(runner):
    crops = np.stack([_image(BASE, BASE, s) for s in range(6)]).reshape(2, 3, BASE, BASE, 3)
    averaged = protocol.crop_posteriors(runner, crops, forward_batch_size=4).numpy()
    one_by_one = np.stack([[runner.posteriors(c[None]).numpy()[0] for c in image] for image in crops]).mean(1)
    np.testing.assert_allclose(averaged, one_by_one, rtol=1e-5, atol=1e-6)


def test_centre_crops_and_mirrors_in_passes_of_forward_batch_size(runner):
    crops = np.stack([_image(BASE, BASE, s) for s in range(3)])
    passes = []

    def recorded(images):
        passes.append(int(images.shape[0]))
        return runner.posteriors(images)

    recording = dataclasses.replace(runner)
    recording.posteriors = recorded
    posteriors = protocol.center_posteriors(recording, crops, flip=True, forward_batch_size=4).numpy()
    assert passes == [4, 2], "3 crops + 3 mirrors in passes of at most 4"
    mirrors = crops[:, :, ::-1]
    expected = (runner.posteriors(crops).numpy() + runner.posteriors(mirrors).numpy()) / 2
    np.testing.assert_allclose(posteriors, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- dense


def test_dense_equals_centre_crop_on_a_base_size_image(model):
    image = _image(BASE, BASE, 3)
    batch = next(
        iter(
            inputs.eval_batches(
                _source([image], [0]),
                scales=(BASE,),
                kinds=["center", "dense"],
                crop_size=BASE,
                grid=5,
                flip=True,
                batch_size=1,
            )
        )
    )
    posteriors = protocol.batch_posteriors(prepare_model(model), batch, ["center", "dense"], (BASE,), flip=False)
    np.testing.assert_allclose(posteriors["dense"], posteriors["center"], rtol=1e-5, atol=1e-6)
    decoded = np.asarray(Image.open(io.BytesIO(_png(image))), "float32")
    np.testing.assert_allclose(posteriors["center"], model.predict(decoded[None], verbose=0), rtol=1e-5, atol=1e-6)


def _per_image_scores(model, images, flip):
    """Reference: each image alone through keras' conv-head model, scores averaged."""
    score_model = models.score_map_model(model)
    rows = []
    for image in images:
        views = [image, image[:, ::-1]] if flip else [image]
        rows.append(np.mean([score_model.predict(v[None], verbose=0)[0].mean((0, 1)) for v in views], 0))
    return np.stack(rows)


def _padded(images):
    height, width = max(i.shape[0] for i in images), max(i.shape[1] for i in images)
    batch = np.zeros((len(images), height, width, 3), "float32")
    for index, image in enumerate(images):
        batch[index, : image.shape[0], : image.shape[1]] = image
    return batch, np.array([i.shape[:2] for i in images], "int32")


# Both orientations, a square-ish one and two images of one size (a plain pass of two).
MIXED = ((64, 100), (97, 64), (75, 83), (64, 100))


# pad_multiple 1: exact-size groups, all plain; 32: the two 64x100 share a plain pass; 128: one masked pass.
@pytest.mark.parametrize("flip, pad_multiple", [(False, 32), (True, 1), (True, 32), (True, 128)])
def test_padded_batched_dense_equals_per_image_dense(model, runner, flip, pad_multiple):
    images = [_image(h, w, seed) for seed, (h, w) in enumerate(MIXED)]
    batch, sizes = _padded(images)
    batched = protocol.dense_posteriors(
        _scores_runner(runner), batch, sizes, flip=flip, pad_multiple=pad_multiple
    ).numpy()
    np.testing.assert_allclose(batched, _per_image_scores(model, images, flip), rtol=1e-4, atol=1e-4)


def _recording(runner):
    """The runner, recording each forward pass as (batch shape, masked)."""
    passes, recording = [], dataclasses.replace(runner)

    def recorded(images, sizes=None):
        passes.append((tuple(images.shape[:3]), sizes is not None))
        return runner.posteriors(images, sizes)

    recording.posteriors = recorded
    return recording, passes


def test_dense_groups_run_plain_unpadded_passes_and_keep_the_order(runner):
    # A portrait image between two landscape ones of one size, all padded to 96x96 by the batch.
    images = [_image(64, 96, 0), _image(96, 64, 1), _image(64, 96, 2)]
    batch, sizes = _padded(images)
    runner = _scores_runner(runner)
    recording, passes = _recording(runner)
    grouped = protocol.dense_posteriors(recording, batch, sizes, flip=True).numpy()
    assert passes == [((4, 64, 96), False), ((2, 96, 64), False)], "image + mirror, no padding, no masks"
    one_by_one = np.concatenate([protocol.dense_posteriors(runner, image[None]).numpy() for image in images])
    np.testing.assert_allclose(grouped, one_by_one, rtol=1e-5, atol=1e-6)
    passes.clear()
    masked = protocol.dense_posteriors(recording, batch, sizes, flip=True, pad_multiple=128).numpy()
    assert passes == [((6, 96, 96), True)], "one bucket: one masked pass of the 3 images and their mirrors"
    np.testing.assert_allclose(masked, one_by_one, rtol=1e-5, atol=1e-6)


def test_dense_groups_buckets_by_rounded_size():
    sizes = [(256, 341), (341, 256), (256, 352), (256, 384), (250, 340)]
    groups = protocol.dense_groups(sizes, 32)
    assert [g.tolist() for g in groups] == [[0, 2, 4], [1], [3]]
    assert [g.tolist() for g in protocol.dense_groups(sizes, 1)] == [[0], [1], [2], [3], [4]]


def test_masked_pass_on_a_full_batch_equals_the_plain_pass(runner):
    batch = np.stack([_image(64, 80, s) for s in range(2)])
    full = np.array([[64, 80], [64, 80]], "int32")
    np.testing.assert_allclose(
        runner.posteriors(batch, full).numpy(), runner.posteriors(batch).numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=np.array([[64, 80]], "int32")), "sizes"),
        (dict(pad_multiple=0), "pad_multiple"),
    ],
)
def test_dense_bad_arguments_are_named(runner, kwargs, match):
    kwargs.setdefault("sizes", np.array([[64, 80], [64, 80]], "int32"))
    with pytest.raises(ValueError, match=match):
        protocol.dense_posteriors(runner, np.zeros([2, 64, 80, 3], "float32"), **kwargs)


def test_padded_dense_with_lrn_and_batch_norm_layers():
    model = _tiny("A-LRN", seed=5, batch_norm=True)
    images = [_image(96, 64, 10), _image(64, 71, 11)]
    batch, sizes = _padded(images)
    batched = protocol.dense_posteriors(
        _scores_runner(prepare_model(model)), batch, sizes, flip=False, pad_multiple=128
    ).numpy()
    np.testing.assert_allclose(batched, _per_image_scores(model, images, False), rtol=1e-4, atol=1e-4)


def test_zero_padding_without_masks_would_differ(model):
    # The reason for the masks: the same padded batch through the plain conv model leaks.
    images = [_image(64, 100, 0), _image(97, 64, 1)]
    batch, sizes = _padded(images)
    maps = models.score_map_model(model).predict(batch, verbose=0)
    kernel = BASE // 32  # fc1 is a kernel x kernel valid conv on the block5 map (size // 32)
    leaky = np.stack(
        [maps[b, : h // 32 - kernel + 1, : w // 32 - kernel + 1].mean((0, 1)) for b, (h, w) in enumerate(sizes)]
    )
    assert not np.allclose(leaky, _per_image_scores(model, images, False), atol=1e-3)


def test_pad_multiple_does_not_change_dense_results(runner):
    images = [_image(64, 90, 4), _image(70, 64, 5)]
    batch, sizes = _padded(images)
    exact = protocol.dense_posteriors(runner, batch, sizes, flip=True, pad_multiple=1).numpy()
    rounded = protocol.dense_posteriors(runner, batch, sizes, flip=True, pad_multiple=128).numpy()
    np.testing.assert_allclose(exact, rounded, rtol=1e-5, atol=1e-6)


def test_evaluate_groups_mixed_shapes_without_changing_results_or_order(model, runner):
    # Both orientations, three size buckets, at two scales with flips; a channels_first twin batched
    # against the channels_last model one image at a time.
    shapes = [(64, 96), (96, 64), (64, 96), (80, 64), (96, 64)]
    source = _source([_image(h, w, seed) for seed, (h, w) in enumerate(shapes)], [0, 1, 2, 3, 4])
    kwargs = dict(methods=("dense",), scales=(64, 80), crop_size=BASE, num_samples=0, progress=False, model_names=["m"])
    grouped = protocol.evaluate(models.to_data_format(model, "channels_first"), source, batch_size=5, **kwargs)
    alone = protocol.evaluate(runner, source, batch_size=1, **kwargs)
    np.testing.assert_array_equal(grouped.labels, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(grouped.top_predictions["m", "dense"][0], alone.top_predictions["m", "dense"][0])
    np.testing.assert_allclose(
        grouped.top_predictions["m", "dense"][1], alone.top_predictions["m", "dense"][1], rtol=1e-5, atol=1e-6
    )
    assert grouped.rows == alone.rows


def test_baked_in_preprocessing_equals_preprocess_callable():
    plain = _tiny(seed=3)
    spec = dataclasses.replace(models.describe(plain).spec, preprocessing="caffe")
    baked = models.build_from_spec(spec)
    baked.set_weights(plain.get_weights())
    images = [_image(64, 96, 6), _image(80, 64, 7)]
    batch, sizes = _padded(images)
    with_layer = protocol.dense_posteriors(prepare_model(baked), batch, sizes).numpy()
    with_callable = protocol.dense_posteriors(
        prepare_model(plain, preprocessing.preprocess_input), batch, sizes
    ).numpy()
    np.testing.assert_allclose(with_layer, with_callable, rtol=1e-5, atol=1e-6)
    single = np.concatenate([protocol.dense_posteriors(prepare_model(baked), i[None]).numpy() for i in images])
    np.testing.assert_allclose(with_layer, single, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="preprocess"):
        prepare_model(baked, preprocessing.preprocess_input)


# --------------------------------------------------------------------------- ensembles and metrics


def test_ensemble_of_identical_models_equals_one_model(model, runner):
    source = _source([_image(70, 90, s) for s in range(4)], [0, 1, 2, 3])
    kwargs = dict(
        methods=("dense", "multicrop", "dense+multicrop"),
        scales=(64, 80),
        crop_size=BASE,
        batch_size=3,
        num_samples=0,
        progress=False,
    )
    single = protocol.evaluate(runner, source, **kwargs)
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    ensemble = protocol.evaluate([runner, twin], source, **kwargs)
    assert [row["model"] for row in ensemble.rows[-3:]] == [f"{model.name}+{model.name}_2"] * 3
    for one, many in zip(single.rows, ensemble.rows[-3:]):
        assert (one["top1_error"], one["top5_error"]) == (many["top1_error"], many["top5_error"])
    for method in kwargs["methods"]:
        np.testing.assert_allclose(
            single.top_predictions[(model.name, method)][1],
            ensemble.top_predictions[ensemble.primary[0], method][1],
            rtol=1e-5,
        )


def test_combination_averages_dense_and_multicrop_posteriors(runner):
    source = _source([_image(72, 88, 9)], [2])
    batch = next(
        iter(
            inputs.eval_batches(
                source, scales=(64, 72), kinds=["dense", "multicrop"], crop_size=BASE, grid=5, flip=True, batch_size=1
            )
        )
    )
    methods = ["dense", "multicrop", "dense+multicrop"]
    posteriors = protocol.batch_posteriors(runner, batch, methods, (64, 72), flip=True)
    np.testing.assert_allclose(posteriors["dense+multicrop"], (posteriors["dense"] + posteriors["multicrop"]) / 2)
    one_scale = [protocol.batch_posteriors(runner, batch, ["dense"], (q,), flip=True)["dense"] for q in (64, 72)]
    np.testing.assert_allclose(posteriors["dense"], np.mean(one_scale, 0), rtol=1e-6)


def test_top_k_error_on_hand_made_predictions():
    posteriors = np.array(
        [
            [0.1, 0.6, 0.2, 0.05, 0.05, 0.0],  # label 1: top-1 hit
            [0.5, 0.1, 0.2, 0.1, 0.05, 0.05],  # label 2: second -> top-5 hit only
            [0.0, 0.0, 0.0, 0.0, 0.1, 0.9],  # label 0: not in the top 5 (0 ties, lowest index last)
            [0.3, 0.2, 0.1, 0.15, 0.15, 0.1],  # label 3: rank 3 -> top-5 hit
        ]
    )
    labels = np.array([1, 2, 0, 3])
    assert metrics.top_k_error(posteriors, labels, 1) == pytest.approx(0.75)
    assert metrics.top_k_error(posteriors, labels, 2) == pytest.approx(0.5)
    assert metrics.top_k_error(posteriors, labels, 5) == pytest.approx(0.0)  # ties: 0 is 5th of [5,4,0,1,2]
    top = metrics.top_k_indices(posteriors, 5)
    np.testing.assert_array_equal(top[2], [5, 4, 0, 1, 2])
    assert metrics.top_k_error(top, labels, 1) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="k="):
        metrics.top_k_error(top[:, :2], labels, 5)
    with pytest.raises(ValueError, match="labels"):
        metrics.top_k_error(posteriors, labels[:3], 1)


def test_confusion_summary_on_hand_made_predictions():
    top = np.array([[1, 0], [1, 0], [0, 1], [2, 1]])
    labels = np.array([0, 0, 0, 2])
    summary = metrics.confusion_summary(top, labels, ("a", "b", "c"))
    assert summary[0] == {
        "class": 0,
        "name": "a",
        "num_images": 3,
        "top1_error": pytest.approx(2 / 3),
        "top5_error": 0.0,
        "most_confused_with": "b",
        "confused_count": 2,
    }
    assert summary[1]["name"] == "c" and summary[1]["top1_error"] == 0.0 and summary[1]["most_confused_with"] is None


# --------------------------------------------------------------------------- report and arguments


def test_report_files_table_and_json(model, runner, tmp_path):
    source = _source([_image(70, 90, s) for s in range(3)], [0, 1, 1])
    report = protocol.evaluate(
        runner,
        source,
        methods=("center", "dense"),
        scales=(64,),
        crop_size=BASE,
        train_scale=(64, 128),
        output_dir=str(tmp_path),
        num_samples=2,
        progress=False,
    )
    table = report.to_markdown().splitlines()
    assert table[0].startswith("| ConvNet | train S | test Q | eval method")
    assert table[2].startswith(f"| {model.name} | [64;128] | 64 | centre crop + flip | 2 |")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [row["method"] for row in saved["rows"]] == ["center", "dense"]
    assert saved["rows"][1]["top1_error"] == report.error(method="dense")
    assert sum(item["num_images"] for item in saved["confusion_summary"]) == 3
    assert "most confused with" in (tmp_path / "confusion.md").read_text()
    for name in ("crop_grid.png", "predictions.png"):
        assert Image.open(tmp_path / name).size[0] > 100


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(methods=("dense", "sliding")), "methods"),
        (dict(methods=("center",), scales=(48,)), "scales"),
        (dict(methods=("dense",), scales=(48,), crop_size=48), "base_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(preprocess=[None, None]), "preprocess"),
    ],
)
def test_bad_arguments_are_named(runner, kwargs, match):
    kwargs.setdefault("crop_size", BASE)
    kwargs.setdefault("scales", (64,))
    with pytest.raises(ValueError, match=match):
        protocol.evaluate(runner, _source([_image(64, 64)], [0]), progress=False, **kwargs)


def test_non_models_are_rejected():
    with pytest.raises(TypeError, match="keras.Model"):
        prepare_model("vgg16")
    with pytest.raises(ValueError, match="model="):
        forward.load_model("missing/model.keras")
