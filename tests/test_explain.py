"""vgg_keras.explain: saliency, SmoothGrad, Grad-CAM against hand computations, overlays, pointing game."""

import ast
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import vgg_keras
from vgg_keras import explain
from vgg_keras.data import sources
from vgg_keras.data import testing as data_testing
from vgg_keras.data.sources import Source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 32
CLASSES = 5


def _model(batch_norm=False, preprocessing=False, activation="softmax", head="dense", seed=0, size=SIZE):
    keras.utils.set_random_seed(seed)
    model = vgg_keras.build(
        "A",
        batch_norm=batch_norm,
        width_multiplier=1 / 16,
        fc_units=32,
        classes=CLASSES,
        base_size=size,
        input_shape=(size, size, 3),
        dropout=0.5,
        head=head,
        classifier_activation=activation,
        include_preprocessing=preprocessing,
        preprocessing="torch" if preprocessing else None,
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # non-trivial BatchNorm statistics, so inference mode matters
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = (w.shape for w in layer.get_weights())
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma),
                    rng.normal(0, 0.1, beta),
                    rng.normal(0, 0.1, mean),
                    rng.uniform(0.5, 2.0, variance),
                ]
            )
    return model


def _logits_twin(model):
    """The same network built with classifier_activation=None: its output IS the class score."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["config"]["name"] == "predictions":
            layer["config"]["activation"] = "linear"
    twin = keras.Model.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def _images(count=3, size=SIZE, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


VARIANTS = {"plain": {}, "batchnorm+preprocessing": {"batch_norm": True, "preprocessing": True}}


# --------------------------------------------------------------------------- hand computations


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_saliency_equals_hand_gradient_tape(variant):
    model = _model(**VARIANTS[variant])
    logits = _logits_twin(model)
    images, classes = _images(), np.array([0, 3, 1])
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)  # the RAW image: with a preprocessing layer the map is in input pixels
        score = tf.reduce_sum(logits(x, training=False) * tf.one_hot(classes, CLASSES))
    expected = tf.reduce_max(tf.abs(tape.gradient(score, x)), axis=-1).numpy()
    np.testing.assert_allclose(explain.saliency(model, images, classes), expected, rtol=1e-4, atol=1e-7)
    # The predicted class by default; one image in, one map out.
    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    np.testing.assert_allclose(explain.saliency(model, images), explain.saliency(model, images, predicted), rtol=1e-6)
    np.testing.assert_allclose(explain.saliency(model, images[1], 3), expected[1], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradcam_equals_hand_computation(variant):
    model = _model(**VARIANTS[variant])
    logits = _logits_twin(model)
    bn = VARIANTS[variant].get("batch_norm", False)
    # BatchNorm variants: a conv's activations are taken after its BN and ReLU.
    for layer, activations_layer in (
        ("block4_conv2", "block4_relu2" if bn else "block4_conv2"),
        (None, "block5_relu2" if bn else "block5_conv2"),
    ):
        images, classes = _images(), np.array([2, 2, 4])
        grad_model = keras.Model(logits.input, [logits.get_layer(activations_layer).output, logits.output])
        with tf.GradientTape() as tape:
            activations, scores = grad_model(tf.constant(images), training=False)
            score = tf.reduce_sum(scores * tf.one_hot(classes, CLASSES))
        alpha = tf.reduce_mean(tape.gradient(score, activations), axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(alpha * activations, axis=-1))
        expected = tf.image.resize(cam[..., None], (SIZE, SIZE), method="bilinear")[..., 0].numpy()
        assert expected.max() > 0
        np.testing.assert_allclose(
            explain.gradcam(model, images, classes, layer=layer), expected, rtol=1e-4, atol=1e-6 * expected.max()
        )


def test_dense_and_conv_heads_give_the_same_maps_at_base_size():
    dense = _model(batch_norm=True, preprocessing=True)
    conv = vgg_keras.to_fully_convolutional(dense)
    images = _images()
    for method, kwargs in (
        ("saliency", {}),
        ("gradcam", {}),
        ("gradcam", {"layer": "block3_conv1"}),
        ("smoothgrad", {"samples": 3, "seed": 1}),
    ):
        np.testing.assert_allclose(
            explain.explain(conv, images, method, **kwargs),
            explain.explain(dense, images, method, **kwargs),
            rtol=1e-4,
            atol=1e-6,
        )
    # The conv head also explains larger inputs (class scores averaged over space first).
    assert explain.gradcam(conv, _images(size=64)).shape == (3, 64, 64)
    assert "fc1" in explain.conv_layer_names(conv) and explain.default_layer(conv) == "block5_conv2"


def test_gradcam_on_the_layer_feeding_the_scores_is_the_score_without_bias():
    # fc2 of a conv head without dropout feeds `predictions` directly; at base size its map is
    # 1x1, alpha_k is the 1x1 kernel's weight w_kc, so the map is ReLU(score_c - bias_c) everywhere.
    model = vgg_keras.build(
        "A",
        width_multiplier=1 / 16,
        fc_units=32,
        classes=CLASSES,
        base_size=SIZE,
        input_shape=(SIZE, SIZE, 3),
        dropout=0.0,
        head="conv",
        classifier_activation=None,
    )
    images, classes = _images(), np.array([0, 1, 4])
    scores = model.predict(images, verbose=0)[np.arange(3), classes]
    bias = model.get_layer("predictions").get_weights()[1][classes]
    maps = explain.gradcam(model, images, classes, layer="fc2")
    np.testing.assert_allclose(
        maps, np.broadcast_to(np.maximum(scores - bias, 0)[:, None, None], maps.shape), rtol=1e-4, atol=1e-5
    )


def test_smoothgrad_averages_saliency_of_noisy_copies():
    model = _model()
    images = _images(2)
    rng = np.random.default_rng(7)
    spread = 0.2 * (images.max(axis=(1, 2, 3), keepdims=True) - images.min(axis=(1, 2, 3), keepdims=True))
    expected = np.mean(
        [
            explain.saliency(model, images + rng.normal(size=images.shape).astype(np.float32) * spread, [1, 2])
            for _ in range(4)
        ],
        axis=0,
    )
    np.testing.assert_allclose(
        explain.smoothgrad(model, images, [1, 2], samples=4, noise=0.2, seed=7), expected, rtol=1e-5
    )
    # noise=0 and one sample is plain saliency.
    np.testing.assert_allclose(
        explain.smoothgrad(model, images, samples=1, noise=0.0), explain.saliency(model, images), rtol=1e-6
    )


# --------------------------------------------------------------------------- bad input


def test_bad_layer_names_and_classes_say_what_is_allowed():
    model = _model(batch_norm=True)
    images = _images(2)
    allowed = "allowed conv layers: block1_conv1, block2_conv1, block3_conv1, block3_conv2"
    with pytest.raises(ValueError, match=rf"layer='block9_conv1' is not a layer of model 'vgg11_bn'; {allowed}"):
        explain.gradcam(model, images, layer="block9_conv1")
    for not_conv in ("block5_pool", "block5_bn2", "fc1", "predictions"):
        with pytest.raises(ValueError, match=rf"layer='{not_conv}' .*not a conv layer of model .*block5_conv2\.$"):
            explain.gradcam(model, images, layer=not_conv)
    with pytest.raises(ValueError, match=r"class_index=5 out of range; allowed: 0 <= class_index < 5"):
        explain.saliency(model, images, 5)
    with pytest.raises(ValueError, match=r"class_index=\[1, 2, 3\]; allowed: None .* or 2 ints"):
        explain.gradcam(model, images, [1, 2, 3])
    with pytest.raises(ValueError, match="method='lrp'. Allowed: 'saliency', 'smoothgrad', 'gradcam'"):
        explain.explain(model, images, "lrp")
    with pytest.raises(ValueError, match="samples=0; allowed: a positive int"):
        explain.smoothgrad(model, images, samples=0)
    with pytest.raises(ValueError, match=r"images must be a batch \[B, H, W, C\]"):
        explain.saliency(model, images[0, 0])
    with pytest.raises(ValueError, match="needs a Dense or Conv2D layer named 'predictions'"):
        explain.saliency(
            vgg_keras.build("A", include_top=False, width_multiplier=1 / 16, input_shape=(32, 32, 3)), images
        )
    with pytest.raises(TypeError, match="model must be a keras.Model"):
        explain.gradcam("vgg16", images)


# --------------------------------------------------------------------------- other backends


_BACKEND_SCRIPT = """
import sys, numpy as np, keras
from vgg_keras import explain
model = keras.saving.load_model(sys.argv[1])
images = np.load(sys.argv[2])
np.savez(sys.argv[3], saliency=explain.saliency(model, images), gradcam=explain.gradcam(model, images, [1, 4]),
         backend=keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["jax", pytest.param("torch", marks=pytest.mark.slow)])
def test_maps_match_under_other_backends(tmp_path, backend):
    pytest.importorskip(backend)
    model = _model(batch_norm=True, preprocessing=True)
    model_path, images_path, out = str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), str(tmp_path / "maps.npz")
    model.save(model_path)
    images = _images(2)
    np.save(images_path, images)
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-c", _BACKEND_SCRIPT, model_path, images_path, out],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    maps = np.load(out)
    assert str(maps["backend"]) == backend
    np.testing.assert_allclose(maps["saliency"], explain.saliency(model, images), rtol=1e-3, atol=1e-7)
    expected = explain.gradcam(model, images, [1, 4])
    np.testing.assert_allclose(maps["gradcam"], expected, rtol=1e-3, atol=1e-5 * expected.max())


# --------------------------------------------------------------------------- pictures


def test_overlay_blends_colormap_over_image_and_png_is_written_atomically(tmp_path):
    import matplotlib  # noqa: PLC0415

    image = data_testing.smooth_image(20, 30, seed=1)
    heatmap = np.zeros((10, 15), np.float32)
    heatmap[4, 6] = 3.0
    assert np.array_equal(explain.overlay(image, heatmap, alpha=0.0), image)
    colours = explain.overlay(image, heatmap, alpha=1.0, colormap="viridis")
    assert colours.dtype == np.uint8 and colours.shape == (20, 30, 3)
    # The map is scaled to [0, 1] and resized: its hottest pixel gets the colormap's top colour.
    top = np.round(np.asarray(matplotlib.colormaps["viridis"](1.0)[:3]) * 255)
    bottom = np.round(np.asarray(matplotlib.colormaps["viridis"](0.0)[:3]) * 255)
    hottest = np.unravel_index(np.argmax(colours.astype(int).sum(-1) - bottom.sum()), (20, 30))
    assert abs(hottest[0] - 9) <= 1 and abs(hottest[1] - 13) <= 1
    assert np.array_equal(colours[0, 0], bottom)
    assert np.abs(colours.astype(int) - top).sum(-1).min() <= 6
    half = explain.overlay(image, heatmap, alpha=0.5)
    np.testing.assert_allclose(half, 0.5 * image + 0.5 * explain.overlay(image, heatmap, alpha=1.0), atol=1)
    path = explain.save_png(half, str(tmp_path / "out" / "map.png"))
    assert np.array_equal(np.asarray(Image.open(path)), half)
    assert os.listdir(tmp_path / "out") == ["map.png"]  # no temporary left behind
    with pytest.raises(ValueError, match="image must be uint8"):
        explain.save_png(half.astype(np.float32), str(tmp_path / "bad.png"))
    assert not os.path.exists(tmp_path / "bad.png")
    with pytest.raises(ValueError, match="alpha=1.5; allowed"):
        explain.overlay(image, heatmap, alpha=1.5)
    with pytest.raises(ValueError, match="colormap='nope' is not a matplotlib colormap"):
        explain.overlay(image, heatmap, colormap="nope")


def test_pointing_hits_by_hand():
    maps = np.zeros((4, 10, 20), np.float32)
    maps[0, 2, 3] = 1  # inside (rows 1-5, cols 2-10)
    maps[1, 8, 3] = 1  # below the box by 3.5 px (centre 8.5 vs 5)
    maps[2, 8, 3] = 1
    maps[3, 0, 19] = 1  # far corner
    boxes = np.tile([0.1, 0.1, 0.5, 0.5], (4, 1))
    assert explain.pointing_hits(maps, boxes).tolist() == [True, False, False, False]
    assert explain.pointing_hits(maps, boxes, tolerance=3.5).tolist() == [True, True, True, False]
    with pytest.raises(ValueError, match=r"Expected maps \[N, H, W\] and boxes \[N, 4\]"):
        explain.pointing_hits(maps, boxes[:2])


# --------------------------------------------------------------------------- pointing game


COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220]], np.float32)


def _coloured_squares(count, seed, size=64):
    """A square whose colour is the class on a smooth background: the evidence is inside the box."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for i in range(count):
        image = data_testing.smooth_image(size, size, seed=seed * 1000 + i).astype(np.float32) * 0.5 + 64
        side = int(rng.integers(size // 3, size // 2 + 1))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        image[top : top + side, left : left + side] = COLOURS[i % 3]
        images.append(data_testing.encode(image.astype(np.uint8), "PNG"))
        labels.append(i % 3)
        boxes.append([top / size, left / size, (top + side) / size, (left + side) / size])
    dataset = tf.data.Dataset.from_tensor_slices(
        {"image": tf.constant(images), "label": tf.constant(labels, tf.int64), "bbox": tf.constant(boxes, tf.float32)}
    )
    return Source(dataset, 3, ("red", "green", "blue"), count)


@pytest.mark.slow  # trains a tiny model (60 steps)
def test_pointing_game_trained_model_beats_random_init():
    keras.utils.set_random_seed(0)
    model = vgg_keras.build(
        "A",
        batch_norm=True,
        width_multiplier=1 / 16,
        fc_units=32,
        classes=3,
        input_shape=(64, 64, 3),
        dropout=0.0,
        include_preprocessing=True,
        preprocessing="torch",
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    batches = vgg_keras.data.train_dataset(
        _coloured_squares(192, seed=1), batch_size=32, crop_size=64, scale=64, color_shift_std=0.0, seed=0
    )
    model.fit(batches, steps_per_epoch=60, epochs=1, verbose=0)
    validation = _coloured_squares(48, seed=2)
    for layer, margin in ((None, 0.2), ("block4_conv2", 0.4)):
        trained = explain.pointing_game(model, validation, layer=layer)
        # Random init of the same architecture, averaged over three draws.
        random = np.mean(
            [explain.pointing_game(keras.models.clone_model(model), validation, layer=layer).accuracy for _ in range(3)]
        )
        assert trained.num_images == 48 and trained.layer == (layer or "block5_conv2")
        assert trained.accuracy >= random + margin, (layer, trained, random)
    saliency = explain.pointing_game(model, validation, method="saliency", tolerance=2.0)
    assert saliency.method == "saliency" and saliency.layer is None and 0 <= saliency.accuracy <= 1


# --------------------------------------------------------------------------- the recipe


@pytest.mark.slow  # a subprocess importing TensorFlow
def test_explain_recipe_writes_one_png_per_image(tmp_path):
    keras.utils.set_random_seed(0)
    model_path = str(tmp_path / "tiny.keras")
    _model(batch_norm=True, preprocessing=True, size=64).save(model_path)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (height, width) in enumerate([(50, 70), (90, 60)]):
        (folder / f"img{i}.png").write_bytes(data_testing.encode(data_testing.smooth_image(height, width, i), "PNG"))
    single = tmp_path / "single.jpg"
    single.write_bytes(data_testing.encode(data_testing.smooth_image(80, 80, 5), "JPEG"))
    (folder / "notes.txt").write_text("not an image")
    output_dir = tmp_path / "maps"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)

    command = [
        sys.executable,
        os.path.join(ROOT, "recipes", "explain.py"),
        f"--model={model_path}",
        f"--images={folder},{single}",
        "--method=gradcam",
        "--layer=block4_conv2",
        "--class_index=2",
        f"--output_dir={output_dir}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(output_dir)) == ["img0_gradcam.png", "img1_gradcam.png", "single_gradcam.png"]
    picture = np.asarray(Image.open(output_dir / "img1_gradcam.png"))
    assert picture.shape == (64, 128, 3)  # the input at the model's size | the map over it
    assert result.stdout.count("class 2 (p=") == 3


def test_recipe_flag_constants_match_the_library():
    # The recipe copies them so its flags are checked before TensorFlow loads.
    with open(os.path.join(ROOT, "recipes", "explain.py"), encoding="utf-8") as file:
        tree = ast.parse(file.read())
    constants = [
        (target.id, node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    copies = {name: ast.literal_eval(value) for name, value in constants if name.isupper() and name[0] != "_"}
    assert copies == {
        "METHODS": explain.METHODS,
        "DEFAULT_SAMPLES": explain.DEFAULT_SAMPLES,
        "DEFAULT_NOISE": explain.DEFAULT_NOISE,
        "IMAGE_EXTENSIONS": sources.IMAGE_EXTENSIONS,
    }
