"""LPIPS parity with the reference `lpips` package; perceptual and style losses; style transfer."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, save_load_round_trip
from safetensors.numpy import save_file

import vgg_keras
from vgg_keras import perceptual
from vgg_keras import weights as weights_lib

SIZES = ((64, 64), (48, 80))
TINY = 1 / 16

# Runs in a subprocess: torchvision (which lpips imports) segfaults when imported after TensorFlow.
REFERENCE_SCRIPT = textwrap.dedent(
    """
    import sys
    import lpips
    import numpy as np
    import torch

    out = sys.argv[1]
    torch.manual_seed(0)
    model = lpips.LPIPS(net="vgg", version="0.1", pnet_rand=True, verbose=False)
    state = model.state_dict()
    trunk = {}
    for key, value in state.items():
        if key.startswith("net.slice"):  # net.slice{k}.{index}.{weight,bias} -> features.{index}.*
            _, _, index, name = key.split(".")
            trunk[f"features.{index}.{name}"] = value.clone()
    torch.save(trunk, f"{out}/trunk.pth")
    torch.save({k: v.clone() for k, v in state.items() if k.startswith("lin")}, f"{out}/linear.pth")
    pairs = np.load(f"{out}/pairs.npz")
    results = {}
    with torch.no_grad():
        for name in sorted({k[:-2] for k in pairs.files}):
            x0, x1 = (torch.from_numpy(pairs[f"{name}_{i}"]).permute(0, 3, 1, 2).contiguous() for i in "01")
            model.spatial = False
            results[f"{name}_distance"] = model(x0, x1).numpy().reshape(-1)
            model.spatial = True
            results[f"{name}_map"] = model(x0, x1).numpy()[:, 0]
    np.savez(f"{out}/reference.npz", **results)
    """
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference LPIPS (random trunk, published linear layers): its weights files and outputs."""
    if importlib.util.find_spec("lpips") is None:  # not imported here: see REFERENCE_SCRIPT
        pytest.skip("the reference lpips package is not installed (pip install 'vgg_keras[test]')")
    out = tmp_path_factory.mktemp("lpips_reference")
    rng = np.random.default_rng(0)
    pairs = {}
    for height, width in SIZES:
        x0 = rng.uniform(-1, 1, (3, height, width, 3)).astype("float32")
        x1 = np.clip(x0 + rng.normal(0, 0.3, x0.shape), -1, 1).astype("float32")
        x1[2] = rng.uniform(-1, 1, x1.shape[1:])  # an unrelated pair too
        pairs[f"s{height}x{width}_0"], pairs[f"s{height}x{width}_1"] = x0, x1
    np.savez(out / "pairs.npz", **pairs)
    result = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, pairs, dict(np.load(out / "reference.npz"))


@pytest.fixture(scope="module")
def lpips_metric(reference):
    out = reference[0]
    return perceptual.LPIPS(trunk_weights=str(out / "trunk.pth"), linear_weights=str(out / "linear.pth"))


@pytest.mark.parametrize("size", SIZES)
def test_lpips_equals_the_reference_package(reference, lpips_metric, size):
    _, pairs, expected = reference
    name = f"s{size[0]}x{size[1]}"
    x0, x1 = pairs[f"{name}_0"], pairs[f"{name}_1"]
    distance = keras.ops.convert_to_numpy(lpips_metric(x0, x1))
    assert distance.shape == (3,)
    assert np.abs(distance - expected[f"{name}_distance"]).max() <= 1e-5
    assert expected[f"{name}_distance"].min() > 0.01  # a meaningful comparison, not of zeros
    spatial = perceptual.LPIPS.from_config({**lpips_metric.get_config(), "spatial": True})
    distance_map = keras.ops.convert_to_numpy(spatial(x0, x1))
    assert distance_map.shape == (3, *size)
    assert np.abs(distance_map - expected[f"{name}_map"]).max() <= 1e-5


def test_lpips_takes_0_255_input_and_is_zero_for_equal_images(reference, lpips_metric):
    out, pairs, expected = reference
    metric = perceptual.LPIPS(
        trunk_weights=str(out / "trunk.pth"), linear_weights=str(out / "linear.pth"), value_range=(0, 255)
    )
    x0, x1 = ((pairs[f"s64x64_{i}"] + 1) * 127.5 for i in "01")
    assert np.abs(keras.ops.convert_to_numpy(metric(x0, x1)) - expected["s64x64_distance"]).max() <= 1e-5
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(lpips_metric(pairs["s64x64_0"], pairs["s64x64_0"])), 0, atol=1e-7
    )


def test_lpips_finds_the_linear_weights_of_the_installed_package(reference, lpips_metric):
    out, pairs, expected = reference
    packaged = perceptual.linear_weights_path()
    assert packaged.endswith(os.path.join("lpips", "weights", "v0.1", "vgg.pth"))
    for ours, theirs in zip(
        perceptual.read_linear_weights(packaged), perceptual.read_linear_weights(str(out / "linear.pth"))
    ):
        np.testing.assert_array_equal(ours, theirs)
    metric = perceptual.LPIPS(trunk_weights=str(out / "trunk.pth"))
    assert (
        np.abs(
            keras.ops.convert_to_numpy(metric(pairs["s48x80_0"], pairs["s48x80_1"])) - expected["s48x80_distance"]
        ).max()
        <= 1e-5
    )


def test_lpips_bad_input_is_named(lpips_metric):
    metric = lpips_metric
    x = np.zeros((1, 32, 32, 3), "float32")
    with pytest.raises(ValueError, match=r"x0 and x1 must have one shape.*\(1, 32, 32, 3\).*\(1, 32, 48, 3\)"):
        metric(x, np.zeros((1, 32, 48, 3), "float32"))
    with pytest.raises(ValueError, match=r"x1 has values in \[0, 255\], outside value_range=\(-1, 1\)"):
        metric(x, np.linspace(0, 255, x.size, dtype="float32").reshape(x.shape))
    with pytest.raises(ValueError, match=r"x0 has shape \(32, 32, 3\)"):
        metric(x[0], x[0])
    with pytest.raises(ValueError, match=r"shape \(1, 8, 32, 3\); allowed: sides of at least 16 pixels"):
        metric(x[:, :8], x[:, :8])
    with pytest.raises(ValueError, match="imagenet-keras.*calibrated on torchvision"):
        perceptual.LPIPS(trunk_weights="imagenet-keras")
    with pytest.raises(ValueError, match="value_range"):
        perceptual.LPIPS(trunk_weights=None, value_range=(1, -1))


def test_missing_linear_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    from vgg_keras.perceptual import lpips as lpips_module

    monkeypatch.setattr(lpips_module, "_lpips_package_file", lambda entry: None)  # as without lpips installed
    monkeypatch.setenv(weights_lib.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(weights_lib.BASE_URL_ENV, "http://127.0.0.1:9")  # discard port: nothing listens
    target = os.path.join(tmp_path, "lpips-vgg-v0.1", "vgg.pth")
    with pytest.raises(weights_lib.WeightsDownloadError, match="place it at " + target.replace(".", r"\.")) as error:
        perceptual.LPIPS(trunk_weights=None)
    assert "linear_weights=" in str(error.value) and "pip install lpips" in str(error.value)
    with pytest.raises(ValueError, match="linear_weights='/nonexistent.pth' is not a file"):
        perceptual.LPIPS(trunk_weights=None, linear_weights="/nonexistent.pth")


# --------------------------------------------------------------------------- losses on a tiny VGG


def _numpy_features(network, images: np.ndarray, arch: str) -> dict[str, np.ndarray]:
    """Every conv+ReLU output of `network`'s weights, computed in float64 NumPy (NHWC)."""
    x = images.astype("float64")
    outputs = {}
    available = {layer.name for layer in network.layers}
    for block, convs in enumerate(vgg_keras.configs.resolve_model_name(arch)[0].blocks, start=1):
        for index in range(1, len(convs) + 1):
            name = f"block{block}_conv{index}"
            if name not in available:
                return outputs
            kernel, bias = (w.astype("float64") for w in network.get_layer(name).get_weights())
            pad = kernel.shape[0] // 2
            padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[:2], axis=(1, 2))
            x = np.maximum(np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias, 0)
            outputs[name] = x
        n, h, w, c = x.shape
        x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return outputs


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Tiny random VGG16 (recorded as torch-normalised) and VGG19 (caffe) weights files."""
    out = tmp_path_factory.mktemp("tiny_vgg")
    paths = {}
    for arch, mode in (("vgg16", "torch"), ("vgg19", "caffe")):
        keras.utils.set_random_seed(7)
        model = vgg_keras.build(arch, include_top=False, width_multiplier=TINY, input_shape=(None, None, 3))
        paths[arch] = weights_lib.save_weights(model, str(out / f"{arch}.weights.h5"), preprocessing=mode)
    return paths


def _images(seed: int, low: float = 0.0, high: float = 1.0, shape=(2, 32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype("float32")


def test_perceptual_loss_equals_a_numpy_computation(tiny_weights):
    loss = perceptual.PerceptualLoss(
        ["relu1_2", "block2_conv2"],
        [0.5, 2.0],
        weights=tiny_weights["vgg16"],
        width_multiplier=TINY,
        value_range=(0, 1),
    )
    assert loss.preprocessing == "torch"  # read from the weights file
    y_true, y_pred = _images(1), _images(2)
    normalised = [
        (y * 255 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]) for y in (y_true, y_pred)
    ]
    target, predicted = (_numpy_features(loss.network, x, "vgg16") for x in normalised)
    per_image = sum(
        w * ((predicted[n] - target[n]) ** 2).mean(axis=(1, 2, 3))
        for w, n in ((0.5, "block1_conv2"), (2.0, "block2_conv2"))
    )
    np.testing.assert_allclose(float(loss(y_true, y_pred)), per_image.mean(), rtol=1e-5)
    loss.reduction = None
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss(y_true, y_pred)), per_image, rtol=1e-5)
    assert float(keras.ops.max(loss(y_true, y_true))) == 0.0


def test_style_loss_equals_gatys_formula_in_numpy(tiny_weights):
    loss = perceptual.StyleLoss(weights=tiny_weights["vgg19"], width_multiplier=TINY)
    assert loss.keras_layers == tuple(f"block{b}_conv1" for b in range(1, 6)) and loss.arch == "vgg19"
    y_true, y_pred = _images(3, 0, 255), _images(4, 0, 255)
    normalised = [y[..., ::-1] - np.array([103.939, 116.779, 123.68]) for y in (y_true, y_pred)]  # caffe
    target, predicted = (_numpy_features(loss.network, x, "vgg19") for x in normalised)
    per_image = 0.0
    for block in range(1, 6):
        name = f"block{block}_conv1"
        n_channels, m_positions = target[name].shape[-1], np.prod(target[name].shape[1:3])
        grams = [np.einsum("nhwc,nhwd->ncd", f[name], f[name]) for f in (predicted, target)]  # G = F F^T
        per_image = per_image + 0.2 * ((grams[0] - grams[1]) ** 2).sum(axis=(1, 2)) / (
            4 * n_channels**2 * m_positions**2
        )
    np.testing.assert_allclose(float(loss(y_true, y_pred)), per_image.mean(), rtol=1e-4)


def test_gram_matrix_and_total_variation_by_hand():
    features = _images(5, -1, 1, (2, 3, 4, 5))
    flat = features.reshape(2, 12, 5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(perceptual.gram_matrix(features)),
        np.einsum("nmc,nmd->ncd", flat, flat) / 60,
        rtol=1e-5,
    )
    images = _images(6, 0, 255, (2, 8, 9, 3))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(perceptual.total_variation(images, "absolute")),
        tf.image.total_variation(tf.constant(images)).numpy(),
        rtol=1e-5,
    )
    squared = (np.diff(images, axis=1) ** 2).sum(axis=(1, 2, 3)) + (np.diff(images, axis=2) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(perceptual.total_variation(images, weight=0.5)), 0.5 * squared, rtol=1e-5
    )
    with pytest.raises(ValueError, match="kind='l1'; allowed: 'squared', 'absolute'"):
        perceptual.total_variation(images, "l1")


def test_layer_names_are_relu_or_keras_names_and_bad_ones_list_the_allowed(tiny_weights):
    by_relu = perceptual.PerceptualLoss(["relu3_3"], weights=tiny_weights["vgg16"], width_multiplier=TINY)
    by_keras = perceptual.PerceptualLoss(["block3_conv3"], weights=tiny_weights["vgg16"], width_multiplier=TINY)
    y_true, y_pred = _images(7, 0, 255), _images(8, 0, 255)
    assert float(by_relu(y_true, y_pred)) == float(by_keras(y_true, y_pred)) > 0
    assert perceptual.relu_layers("vgg16_bn")["relu2_2"] == "block2_relu2"
    for bad in ("block2_pool", "relu6_1", "fc1", "block2_bn2"):
        with pytest.raises(
            ValueError,
            match=rf"'{bad}', which is not a ReLU output of vgg16\. Allowed: relu1_1 "
            r"\(block1_conv1\),.* relu5_3 \(block5_conv3\)\.",
        ):
            perceptual.PerceptualLoss([bad], weights=None, width_multiplier=TINY)
    with pytest.raises(ValueError, match="layer_weights=\\[1.0\\]; allowed: None or 2 finite non-negative"):
        perceptual.StyleLoss(["relu1_1", "relu2_1"], [1.0], weights=None, width_multiplier=TINY)
    with pytest.raises(ValueError, match=r"y_true and y_pred must have one shape"):
        by_relu(_images(1, shape=(2, 32, 32, 3)), _images(1, shape=(2, 40, 32, 3)))


def test_losses_train_a_model_serialise_and_stay_frozen(tiny_weights, tmp_path):
    loss = perceptual.PerceptualLoss(weights=tiny_weights["vgg16"], width_multiplier=TINY, value_range=(0, 1))
    frozen = [w.copy() for w in loss.network.get_weights()]
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    x, y = _images(9), _images(10)
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=3, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and model.evaluate(x, y, verbose=0) < before
    for old, new in zip(frozen, loss.network.get_weights()):
        np.testing.assert_array_equal(old, new)
    restored = save_load_round_trip(model, tmp_path, x)
    np.testing.assert_allclose(restored.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)
    style = perceptual.StyleLoss(
        ["relu1_1", "block2_conv1"], [1.0, 3.0], weights=tiny_weights["vgg19"], width_multiplier=TINY, reduction="sum"
    )
    copy = keras.losses.deserialize(keras.losses.serialize(style))
    assert type(copy) is perceptual.StyleLoss and copy.get_config() == style.get_config()
    y_true, y_pred = _images(11, 0, 255), _images(12, 0, 255)
    assert float(copy(y_true, y_pred)) == pytest.approx(float(style(y_true, y_pred)), rel=1e-6)


def test_losses_compute_in_float32_under_mixed_precision(tiny_weights):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        loss = perceptual.StyleLoss(weights=tiny_weights["vgg19"], width_multiplier=TINY)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # restored after the build
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert {layer.dtype_policy.name for layer in loss.network.layers} == {"float32"}
    y_true, y_pred = (keras.ops.cast(_images(s, 0, 255), "bfloat16") for s in (13, 14))
    value = loss(y_true, y_pred)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    exact = loss(keras.ops.cast(y_true, "float32"), keras.ops.cast(y_pred, "float32"))
    assert float(value) == pytest.approx(float(exact), rel=1e-6)


JAX_SCRIPT = textwrap.dedent(
    """
    import json
    import os
    import sys

    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras
    import numpy as np

    from vgg_keras import perceptual

    out = sys.argv[1]
    configs = json.load(open(os.path.join(out, "configs.json")))
    data = np.load(os.path.join(out, "inputs.npz"))
    results = {"backend": keras.backend.backend()}
    for name, config in configs.items():
        loss = getattr(perceptual, name).from_config(config)
        value, gradient = jax.jit(jax.value_and_grad(lambda p: loss(data["y_true"], p)))(data["y_pred"])
        results[name], gradient = float(value), np.asarray(gradient)
        results[name + "_gradient"] = bool(np.isfinite(gradient).all() and np.abs(gradient).max() > 0)
    results["tv"] = np.asarray(perceptual.total_variation(data["y_pred"])).tolist()
    metric = perceptual.LPIPS(os.path.join(out, "trunk.weights.h5"), os.path.join(out, "linear.safetensors"))
    results["lpips"] = np.asarray(jax.jit(metric)(data["x0"], data["x1"])).tolist()
    print(json.dumps(results))
    """
)


def test_losses_and_lpips_give_the_same_values_and_gradients_on_jax(tiny_weights, tmp_path):
    losses = {
        "PerceptualLoss": perceptual.PerceptualLoss(
            ["relu1_2", "relu3_3"], [1.0, 0.5], weights=tiny_weights["vgg16"], width_multiplier=TINY
        ),
        "StyleLoss": perceptual.StyleLoss(weights=tiny_weights["vgg19"], width_multiplier=TINY),
    }
    y_true, y_pred = _images(15, 0, 255), _images(16, 0, 255)
    (tmp_path / "configs.json").write_text(json.dumps({k: v.get_config() for k, v in losses.items()}))
    # LPIPS too: a random trunk saved as a Keras weights file, random linear weights as safetensors.
    rng = np.random.default_rng(17)
    save_file(
        {
            f"lin{k}.model.1.weight": rng.uniform(0, 0.1, (1, c, 1, 1)).astype("float32")
            for k, c in enumerate(perceptual.lpips.LPIPS_CHANNELS)
        },
        str(tmp_path / "linear.safetensors"),
    )
    metric = perceptual.LPIPS(trunk_weights=None, linear_weights=str(tmp_path / "linear.safetensors"))
    metric.trunk.save_weights(str(tmp_path / "trunk.weights.h5"))
    x0, x1 = _images(18, -1, 1, (2, 32, 48, 3)), _images(19, -1, 1, (2, 32, 48, 3))
    np.savez(tmp_path / "inputs.npz", y_true=y_true, y_pred=y_pred, x0=x0, x1=x1)
    result = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_jax = json.loads(result.stdout.strip().splitlines()[-1])
    assert on_jax["backend"] == "jax"
    for name, loss in losses.items():
        assert on_jax[name] == pytest.approx(float(loss(y_true, y_pred)), rel=1e-5)
        assert on_jax[name + "_gradient"]
    np.testing.assert_allclose(on_jax["tv"], keras.ops.convert_to_numpy(perceptual.total_variation(y_pred)), rtol=1e-5)
    np.testing.assert_allclose(on_jax["lpips"], keras.ops.convert_to_numpy(metric(x0, x1)), atol=1e-6)


# --------------------------------------------------------------------------- style transfer


def _content_and_style():
    y, x = np.mgrid[0:32, 0:40]
    content = np.stack([x * 6.0, y * 7.0, np.full_like(x, 128.0)], -1)
    style = np.where(((x + y) // 4 % 2)[..., None] == 1, [250.0, 200.0, 20.0], [20.0, 30.0, 120.0])
    return content.astype("float32"), style.astype("float32")


def test_style_transfer_lowers_the_style_term_and_keeps_the_image_valid(tiny_weights):
    content, style = _content_and_style()
    seen = []
    image = perceptual.style_transfer(
        content,
        style[:24],
        steps=12,
        weights=tiny_weights["vgg19"],
        width_multiplier=TINY,
        style_weight=1.0,
        tv_weight=0.0,
        learning_rate=8.0,
        callback=lambda step, img, terms: seen.append((step, img.shape, terms)),
    )
    assert image.shape == content.shape and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 255 and np.abs(image - content).max() > 1
    assert [s for s, _, _ in seen] == list(range(1, 13)) and seen[0][1] == content.shape
    assert seen[0][2]["content"] == 0.0  # started from the content image
    assert seen[-1][2]["style"] < 0.5 * seen[0][2]["style"]
    assert seen[-1][2]["loss"] < seen[0][2]["loss"]
    with pytest.raises(ValueError, match=r"content has values in \[0, 300\]; allowed: \[0, 255\]"):
        perceptual.style_transfer(np.full((32, 32, 3), 300.0) * (np.arange(3) > 0), style, weights=None, steps=1)
    with pytest.raises(ValueError, match="content_layer contains 'block4_pool'"):
        perceptual.style_transfer(
            content, style, weights=None, steps=1, content_layer="block4_pool", width_multiplier=TINY
        )
    with pytest.raises(ValueError, match="steps=0; allowed: an integer >= 1"):
        perceptual.style_transfer(content, style, weights=None, steps=0)


@pytest.mark.slow
def test_style_transfer_recipe_writes_intermediate_and_final_pngs(tiny_weights, tmp_path):
    from PIL import Image

    content, style = _content_and_style()
    for name, image in (("content", content), ("style", style)):
        perceptual.save_image(image, str(tmp_path / f"{name}.png"))
    out = tmp_path / "out"
    command = [
        sys.executable,
        os.path.join(ROOT, "recipes", "style_transfer.py"),
        f"--content={tmp_path}/content.png",
        f"--style={tmp_path}/style.png",
        f"--output_dir={out}",
        f"--weights={tiny_weights['vgg19']}",
        f"--width_multiplier={TINY}",
        "--size=40",
        "--steps=4",
        "--save_every=2",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, env={**os.environ, "PYTHONPATH": ROOT}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == ["final.png", "step_00002.png", "step_00004.png"]  # no temporary files left
    with Image.open(out / "final.png") as final:
        assert final.size == (40, 32) and final.mode == "RGB"
    assert "style transfer" in result.stderr and "Wrote" in result.stdout
    command[2] = f"--content={tmp_path}/missing.png"
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "PYTHONPATH": ROOT}
    )
    assert result.returncode != 0 and "missing.png' is not a file; allowed: an image file" in result.stderr
    assert "tensorflow" not in result.stderr.lower()  # failed before TensorFlow was imported
