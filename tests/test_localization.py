"""Localisation (Appendix A): boxes, IoU, SCR/PCR heads, box pipeline, training, evaluation."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import vgg_keras
from vgg_keras import localization as loc
from vgg_keras.data import shapes
from vgg_keras.data import testing as data_testing
from vgg_keras.data.sources import Source

CLASSES = 5
SIZE = 32


def _classifier(seed=0):
    keras.utils.set_random_seed(seed)
    return vgg_keras.build(
        "A",
        width_multiplier=1 / 16,
        fc_units=32,
        classes=CLASSES,
        base_size=SIZE,
        input_shape=(SIZE, SIZE, 3),
        dropout=0.0,
    )


def _source(examples, num_classes=CLASSES) -> Source:
    dataset = tf.data.Dataset.from_tensor_slices(
        {
            "image": tf.constant([e["image"] for e in examples]),
            "label": tf.constant([e["label"] for e in examples], tf.int64),
            "bbox": tf.constant([e["bbox"] for e in examples], tf.float32),
        }
    )
    return Source(dataset, num_classes, tuple(f"c{i}" for i in range(num_classes)), len(examples))


def _rectangle_example(height, width, box, label=0, seed=0, fmt="PNG"):
    """A dark smooth background with a white rectangle exactly at `box` (normalised corners)."""
    image = (data_testing.smooth_image(height, width, seed) // 4).astype(np.uint8)
    ymin, xmin, ymax, xmax = np.round(np.asarray(box) * [height, width, height, width]).astype(int)
    image[ymin:ymax, xmin:xmax] = 255
    return {"image": data_testing.encode(image, fmt), "label": label, "bbox": tuple(box)}


@pytest.fixture(scope="module")
def shapes_source():
    examples = [shapes.generate_example("train", i, 40, 56) for i in range(48)]
    for e in examples:
        e["label"] %= CLASSES
    return _source(examples)


# --------------------------------------------------------------------------- boxes


def test_center_xywh_by_hand_and_round_trip():
    boxes = np.array([[0.2, 0.1, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]], np.float32)
    centre = loc.to_center_xywh(boxes).numpy()
    np.testing.assert_allclose(centre, [[0.3, 0.4, 0.4, 0.4], [0.5, 0.5, 1.0, 1.0]], atol=1e-6)
    random = np.sort(np.random.default_rng(0).uniform(size=(3, 7, 2, 2)), axis=2).transpose(0, 1, 3, 2)
    random = random.reshape(3, 7, 4)[..., [0, 2, 1, 3]]  # (ymin, xmin, ymax, xmax), min <= max
    np.testing.assert_allclose(loc.from_center_xywh(loc.to_center_xywh(random)).numpy(), random, atol=1e-6)
    in_dataset = next(iter(tf.data.Dataset.from_tensors(boxes).map(loc.to_center_xywh))).numpy()
    np.testing.assert_allclose(in_dataset, centre, atol=1e-6)
    with pytest.raises(ValueError, match="boxes must have shape"):
        loc.to_center_xywh(np.zeros([2, 3]))


def test_iou_hand_computed_cases():
    a = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0.5, 0.5], [0.2, 0.2, 0.4, 0.4]], np.float32)
    b = np.array([[0, 0, 1, 1], [0, 0.5, 1, 1.5], [0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0.6, 0.6, 0.8, 0.8]], np.float32)
    expected = [1.0, 1 / 3, 0.25, 0.0, 0.0]
    np.testing.assert_allclose(loc.box_iou(a, b).numpy(), expected, atol=1e-5)
    # The same pairs in the heads' format give the same overlaps.
    centre = loc.box_iou(loc.to_center_xywh(a), loc.to_center_xywh(b), "center_xywh").numpy()
    np.testing.assert_allclose(centre, expected, atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        loc.box_iou(a, b[:2])


def test_crop_window_transforms_are_inverse_and_flip_mirrors():
    boxes = np.array([[0.1, 0.2, 0.7, 0.9]], np.float32)
    window = np.array([[0.05, 0.3, 0.5, 0.6]], np.float32)
    in_crop = loc.image_boxes_to_crop(boxes, window, clip=False)
    np.testing.assert_allclose(loc.crop_boxes_to_image(in_crop, window).numpy(), boxes, atol=1e-6)
    np.testing.assert_allclose(in_crop.numpy(), [[0.1, -1 / 6, 1.3, 1.0]], atol=1e-6)
    np.testing.assert_allclose(loc.image_boxes_to_crop(boxes, window).numpy(), [[0.1, 0.0, 1.0, 1.0]], atol=1e-6)


# --------------------------------------------------------------------------- heads


@pytest.mark.parametrize("mode, shape", [("scr", (2, 4)), ("pcr", (2, CLASSES, 4))])
def test_heads_output_shapes_and_copied_weights(mode, shape):
    classifier = _classifier()
    localizer = loc.build_localizer(classifier, mode)
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    assert tuple(localizer(images).shape) == shape
    assert loc.localizer_mode(localizer) == mode
    names = [layer.name for layer in localizer.layers]
    assert "predictions" not in names and loc.BOX_LAYER in names
    for name in ("block1_conv1", "block5_conv2", "fc1", "fc2"):
        for a, b in zip(localizer.get_layer(name).get_weights(), classifier.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # A copy, not shared layers: training the localizer leaves the classifier alone.
    assert localizer.get_layer("fc2") is not classifier.get_layer("fc2")


def test_conv_head_classifier_is_accepted():
    conv = vgg_keras.to_fully_convolutional(_classifier())
    assert tuple(loc.build_localizer(conv, "scr").output_shape) == (None, 4)


def test_pcr_selects_the_box_of_the_given_class():
    localizer = loc.build_localizer(_classifier(), "pcr")
    layer = localizer.get_layer(loc.BOX_LAYER)
    kernel, _ = layer.get_weights()
    class_boxes = np.arange(CLASSES * 4, dtype=np.float32).reshape(CLASSES, 4) / 100
    layer.set_weights([np.zeros_like(kernel), class_boxes.reshape(-1)])  # every image: box c = class_boxes[c]
    images = np.zeros((3, SIZE, SIZE, 3), np.float32)
    labels = np.array([4, 0, 2], np.int32)
    trained = loc.box_training_model(localizer)
    np.testing.assert_allclose(trained.predict([images, labels], verbose=0), class_boxes[labels], atol=1e-6)
    top = np.array([[1, 3], [2, 2], [0, 4]])
    np.testing.assert_allclose(loc.select_class_boxes(localizer(images), top), class_boxes[top], atol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode='xyz'"):
        loc.build_localizer(_classifier(), "xyz")
    with pytest.raises(TypeError, match="classifier must be a keras.Model"):
        loc.build_localizer("vgg16")
    with pytest.raises(ValueError, match="not a localizer"):
        loc.localizer_mode(_classifier())
    no_boxes = Source(tf.data.Dataset.from_tensors({"image": b"", "label": tf.constant(0, tf.int64)}), 1, ("a",), 1)
    with pytest.raises(ValueError, match="no 'bbox'"):
        loc.box_train_dataset(no_boxes, batch_size=1, crop_size=32, scale=32)


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])  # JPEGs are decoded only inside the crop
def test_random_crops_and_flips_move_the_box_with_the_pixels(fmt):
    box = (0.3, 0.2, 0.8, 0.6)
    source = _source([_rectangle_example(60, 80, box, seed=i, fmt=fmt) for i in range(4)], num_classes=1)
    dataset = loc.box_train_dataset(source, batch_size=4, crop_size=32, scale=(32, 48), seed=3, repeat=False)
    for images, _, boxes in dataset:
        corners = loc.from_center_xywh(boxes).numpy() * 32
        for image, (ymin, xmin, ymax, xmax) in zip(images.numpy(), corners):
            rows, cols = np.nonzero(image.min(axis=-1) > 200)  # the white rectangle
            assert abs(rows.min() - ymin) <= 1.5 and abs(rows.max() + 1 - ymax) <= 1.5
            assert abs(cols.min() - xmin) <= 1.5 and abs(cols.max() + 1 - xmax) <= 1.5


def test_eval_dataset_window_maps_crop_boxes_back():
    box = (0.25, 0.25, 0.75, 0.75)
    source = _source([_rectangle_example(48, 64, box)], num_classes=1)
    batch = next(iter(loc.box_eval_dataset(source, batch_size=1, scale=32, crop_size=32)))
    # 48x64 -> 32x43; the central crop starts at column (43 - 32) // 2 = 5.
    np.testing.assert_allclose(batch["window"].numpy(), [[0, 5 / 43, 1, 32 / 43]], atol=1e-6)
    np.testing.assert_allclose(batch["bbox"].numpy(), [box], atol=1e-6)


# --------------------------------------------------------------------------- training and evaluation


@pytest.mark.parametrize("mode", loc.LOCALIZER_MODES)
def test_a_few_training_steps_reduce_the_box_loss(mode, shapes_source):
    localizer = loc.build_localizer(_classifier(), mode)
    dataset = loc.box_train_dataset(shapes_source, batch_size=16, crop_size=SIZE, scale=(SIZE, 40), seed=0)
    fixed = dataset.take(1).cache()
    model = loc.box_training_model(localizer)

    def loss_on_fixed():
        images, labels, boxes = next(iter(fixed))
        predicted = model([images, labels] if mode == "pcr" else images, training=False)
        return float(np.mean(loc.euclidean_loss(boxes, predicted)))

    before = loss_on_fixed()
    history = loc.train_localizer(
        localizer, fixed.repeat(), epochs=1, steps_per_epoch=15, optimizer=keras.optimizers.Adam(1e-3), verbose=0
    )
    assert np.isfinite(history.history["loss"]).all()
    assert loss_on_fixed() < 0.5 * before


def test_localization_errors_on_hand_made_guesses():
    top = np.array([[0, 1], [1, 0], [2, 1], [0, 2]])
    labels = np.array([0, 0, 0, 2])
    ious = np.array([0.9, 0.6, 0.9, 0.5])  # the last overlaps exactly 0.5: not enough
    errors = loc.localization_errors(top, labels, ious)
    assert errors == {"top1_error": 0.75, "top2_error": 0.5}


def _fixed_box_localizer(crop_box):
    localizer = loc.build_localizer(_classifier(), "scr")
    layer = localizer.get_layer(loc.BOX_LAYER)
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), loc.to_center_xywh(np.float32(crop_box)).numpy()])
    return localizer


def test_evaluation_maps_boxes_to_the_image_and_writes_png(tmp_path):
    box = (0.25, 0.25, 0.75, 0.75)
    source = _source([_rectangle_example(48, 64, box, label=i % CLASSES, seed=i) for i in range(6)])
    # The true box seen in the central 32x32 crop of the 32x43 image (columns 5..37).
    right = _fixed_box_localizer([0.25, (0.25 * 43 - 5) / 32, 0.75, (0.75 * 43 - 5) / 32])
    report = loc.evaluate_localization(
        right, source, scale=32, crop_size=32, batch_size=4, output_dir=str(tmp_path), num_pictures=3
    )
    assert report.num_images == 6 and report.class_source == "ground truth"
    np.testing.assert_allclose(report.ious, 1.0, atol=1e-4)
    assert report.top1_error == 0.0 and report.top5_error == 0.0
    np.testing.assert_allclose(report.pred_boxes, np.tile(box, (6, 1)), atol=1e-5)
    for name in ("localization.md", "localization.json", "localization_boxes.png"):
        assert os.path.getsize(tmp_path / name) > 0
    wrong = _fixed_box_localizer([0.0, 0.0, 0.3, 0.3])
    assert loc.evaluate_localization(wrong, source, scale=32, crop_size=32).top5_error == 1.0
    # With a classifier, a right box still fails when the class is wrong.
    with_classes = loc.evaluate_localization(right, source, classifier=_classifier(), scale=32, crop_size=32, top_k=1)
    assert with_classes.class_source == "classifier"
    np.testing.assert_allclose(
        with_classes.top1_error, 1 - np.mean(with_classes.top_classes[:, 0] == with_classes.labels)
    )
