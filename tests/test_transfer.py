"""Transfer features (Appendix B): the descriptor and the linear classifier on top."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vgg_keras
from vgg_keras import features
from vgg_keras.data import pipeline
from vgg_keras.data import testing as data_testing
from vgg_keras.data.sources import Source

SIZE = 32
CLASSES = 4


def _model(seed=0, classes=CLASSES):
    keras.utils.set_random_seed(seed)
    # Quick-start-like (BatchNorm), at test size.
    return vgg_keras.build(
        "A",
        batch_norm=True,
        width_multiplier=1 / 8,
        fc_units=64,
        classes=classes,
        base_size=SIZE,
        input_shape=(SIZE, SIZE, 3),
        dropout=0.0,
    )


def _normalise(x):
    return x / 127.5 - 1.0


def _pattern(label, rng, size=SIZE):
    """Flip-symmetric texture classes: horizontal / vertical stripes, checker, diagonal checker."""
    height, width = rng.integers(size, size + 17, 2)
    yy, xx = np.mgrid[0:height, 0:width]
    period = rng.uniform(6, 12)
    half, ys, xs = period / 2, yy + rng.uniform(0, period), xx + rng.uniform(0, period)
    bands = {0: ys // half, 1: xs // half, 2: xs // half + ys // half, 3: (xs + ys) // half + (xs - ys) // half}
    stripes = bands[label] % 2
    colours = rng.uniform(0, 255, (2, 3))
    image = np.where(stripes[..., None] > 0, colours[0], colours[1]) + rng.normal(0, 20, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _source(images, labels, num_classes=CLASSES) -> Source:
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "image": tf.constant([data_testing.encode(image, "PNG") for image in images]),
            "label": tf.constant(labels, tf.int64),
        }
    )
    return Source(dataset, num_classes, tuple(f"c{i}" for i in range(num_classes)), len(images))


def _texture_source(count, seed):
    rng = np.random.default_rng(seed)
    labels = [i % CLASSES for i in range(count)]
    return _source([_pattern(label, rng) for label in labels], labels)


def _images(sizes, seed=0):
    return [data_testing.smooth_image(h, w, seed + i) for i, (h, w) in enumerate(sizes)]


@pytest.fixture(scope="module")
def runner():
    return features.descriptor_runner(_model(), _normalise)


# --------------------------------------------------------------------------- descriptor


def test_descriptor_is_the_normalised_fc2_output(runner):
    model = _model()
    image = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
    fc2 = vgg_keras.feature_extractor(model, ["fc2"])(_normalise(image))["fc2"].numpy()
    expected = fc2 / np.linalg.norm(fc2, axis=-1, keepdims=True)
    np.testing.assert_allclose(features.image_descriptors(runner, image, flip=False), expected, atol=1e-5)
    # Dense application on a larger image: the fc2 map averaged over its positions.
    big = np.random.default_rng(1).uniform(0, 255, (1, 64, 96, 3)).astype(np.float32)
    conv = vgg_keras.to_fully_convolutional(model)
    fc2_map = vgg_keras.feature_extractor(conv, ["fc2"])(_normalise(big))["fc2"].numpy()
    assert fc2_map.shape[1:3] == (2, 3)
    pooled = fc2_map.mean(axis=(1, 2))
    np.testing.assert_allclose(
        features.image_descriptors(runner, big, flip=False), pooled / np.linalg.norm(pooled), atol=1e-5
    )


def test_descriptors_are_unit_norm_and_equal_for_an_image_and_its_mirror(runner):
    images = np.stack(_images([(40, 56), (40, 56)]))
    mirrored = images[:, :, ::-1]
    plain, flipped = features.image_descriptors(runner, images), features.image_descriptors(runner, mirrored)
    np.testing.assert_allclose(np.linalg.norm(plain, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(plain, flipped, atol=1e-5)
    # Without the flip average they differ: the test above can fail.
    no_flip = features.image_descriptors(runner, images, flip=False)
    assert np.abs(no_flip - features.image_descriptors(runner, mirrored, flip=False)).max() > 1e-3


def test_batched_descriptors_of_different_sizes_equal_one_by_one(runner):
    images = _images([(32, 48), (45, 32), (40, 40)])
    batched = features.extract_descriptors(runner, _source(images, [0, 1, 2]), scales=32, batch_size=3)
    assert batched.descriptors.shape == (3, 64) and batched.labels.tolist() == [0, 1, 2]
    for image, descriptor in zip(images, batched.descriptors):
        resized = pipeline.decode_resize(data_testing.encode(image, "PNG"), 32)[None]
        np.testing.assert_allclose(features.image_descriptors(runner, resized)[0], descriptor, atol=1e-5)


def test_scales_are_averaged_or_stacked_as_documented(runner):
    source = _source(_images([(36, 50), (50, 36)]), [0, 1])
    single = [features.extract_descriptors(runner, source, scales=q).descriptors for q in (32, 48)]
    average = features.extract_descriptors(runner, source, scales=(32, 48)).descriptors
    mean = (single[0] + single[1]) / 2
    np.testing.assert_allclose(average, mean / np.linalg.norm(mean, axis=-1, keepdims=True), atol=1e-5)
    stacked = features.extract_descriptors(runner, source, scales=(32, 48), aggregation="stack").descriptors
    assert stacked.shape == (2, 128)
    np.testing.assert_allclose(stacked, np.concatenate(single, axis=1) / np.sqrt(2), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(stacked, axis=-1), 1.0, atol=1e-5)


def test_bad_arguments_are_named(runner):
    source = _source(_images([(32, 32)]), [0])
    with pytest.raises(ValueError, match="aggregation='max'"):
        features.extract_descriptors(runner, source, scales=32, aggregation="max")
    with pytest.raises(ValueError, match="scales=.*>= 32"):
        features.extract_descriptors(runner, source, scales=(16,))
    with pytest.raises(ValueError, match="layer='block5_pool'"):
        features.descriptor_runner(_model(), layer="block5_pool")
    with pytest.raises(ValueError, match="loss='svm'"):
        features.train_linear_classifier(np.zeros((2, 3)), [0, 1], num_classes=2, loss="svm")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        features.train_linear_classifier(np.zeros((2, 3)), [0, 5], num_classes=2)


# --------------------------------------------------------------------------- linear classifier


def test_average_precision_on_hand_made_scores():
    assert features.average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert features.average_precision([0.1, 0.8], [1, 0]) == pytest.approx(0.5)
    assert np.isnan(features.average_precision([0.1, 0.2], [0, 0]))


def test_linear_svm_separates_separable_descriptors():
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    centres = np.eye(3, 8) * 3
    points = centres[labels] + rng.normal(0, 0.3, (90, 8))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    for loss in features.LOSSES:
        classifier = features.train_linear_classifier(points, labels, num_classes=3, loss=loss, epochs=50)
        assert features.classification_accuracy(classifier, points, labels) == 1.0
    multi_hot = np.eye(3)[labels]
    svm = features.train_linear_classifier(points, multi_hot, num_classes=3, epochs=50)
    assert features.mean_average_precision(svm, points, multi_hot) == pytest.approx(1.0)


def test_trained_model_descriptors_beat_random_init_descriptors():
    train, test = _texture_source(200, seed=1), _texture_source(100, seed=2)
    trained, random = _model(seed=0), _model(seed=0)
    batches = pipeline.train_dataset(
        train,
        batch_size=32,
        crop_size=SIZE,
        scale=(SIZE, 40),
        color_shift_std=0.0,
        preprocess=_normalise,
        shuffle_buffer=200,
        seed=0,
    )
    trained.compile(keras.optimizers.SGD(0.02, momentum=0.9), "sparse_categorical_crossentropy")
    trained.fit(batches, epochs=1, steps_per_epoch=100, verbose=0)
    accuracy = {}
    for name, model in (("trained", trained), ("random", random)):
        runner = features.descriptor_runner(model, _normalise)
        train_set = features.extract_descriptors(runner, train, scales=SIZE, batch_size=50)
        test_set = features.extract_descriptors(runner, test, scales=SIZE, batch_size=50)
        svm = features.train_linear_classifier(train_set.descriptors, train_set.labels, num_classes=CLASSES)
        accuracy[name] = features.classification_accuracy(svm, test_set.descriptors, test_set.labels)
    assert accuracy["trained"] > accuracy["random"] + 0.15, accuracy


def test_multilabel_source_gives_multi_hot_labels_for_voc(runner):
    import tensorflow_datasets as tfds

    png = data_testing.encode(data_testing.smooth_image(32, 40), "PNG")

    def voc_like(self, *args, **kwargs):  # VOC's encoded images and label lists (TFDS' own mock can't nest)
        del self, args, kwargs
        return tf.data.Dataset.from_generator(
            lambda: iter([{"image": png, "labels": [14, 8, 14]}, {"image": png, "labels": []}]),
            output_signature={"image": tf.TensorSpec([], tf.string), "labels": tf.TensorSpec([None], tf.int64)},
        )

    with tfds.testing.mock_data(as_dataset_fn=voc_like):
        source = features.multilabel_tfds_source("voc/2007", "test")
        examples = list(source.dataset)
        with pytest.raises(ValueError, match="label_key='objects'"):
            features.multilabel_tfds_source("voc/2007", "test", label_key="objects")
    assert source.num_classes == 20 and source.class_names[14] == "person"
    assert examples[0]["image"].numpy() == png
    np.testing.assert_array_equal(examples[0]["label"], np.isin(np.arange(20), [8, 14]))
    np.testing.assert_array_equal(examples[1]["label"], np.zeros(20))
    described = features.extract_descriptors(runner, source, scales=32)
    np.testing.assert_array_equal(described.labels, [np.isin(np.arange(20), [8, 14]), np.zeros(20)])
