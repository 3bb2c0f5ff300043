"""Model builders: Table 1, parameter counts, keras.applications parity, heads, init, errors."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import save_load_round_trip

import vgg_keras
from vgg_keras import configs, models

# PAPER.md: exact parameter counts at 224x224, 1000 classes, dense head (trainable for BN).
PARAM_COUNTS = {
    "vgg11": 132_863_336,
    "vgg11_lrn": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16_c": 133_638_952,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}
CONV_ONLY_COUNTS = {"A": 9_220_480, "B": 9_404_992, "D": 14_714_688, "E": 20_024_384}
NAMED_BUILDERS = {
    "VGG11": ("A", False),
    "VGG11LRN": ("A-LRN", False),
    "VGG13": ("B", False),
    "VGG16C": ("C", False),
    "VGG16": ("D", False),
    "VGG19": ("E", False),
    "VGG11BN": ("A", True),
    "VGG13BN": ("B", True),
    "VGG16BN": ("D", True),
    "VGG19BN": ("E", True),
}


def tiny(config="A", **kwargs):
    """A narrow model for fast tests (64 px, 1/16 width, 32-unit FC layers)."""
    defaults = dict(width_multiplier=1 / 16, fc_units=32, classes=10, base_size=64, input_shape=(64, 64, 3))
    defaults.update(kwargs)
    return vgg_keras.build(config, **defaults)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_exact_parameter_counts_at_224(name):
    model = vgg_keras.get_model(name, weights=None)
    assert trainable_count(model) == PARAM_COUNTS[name]


@pytest.mark.parametrize("letter", sorted(CONV_ONLY_COUNTS))
def test_conv_part_parameter_counts(letter):
    model = vgg_keras.build(letter, include_top=False)
    assert model.count_params() == CONV_ONLY_COUNTS[letter]


def test_table1_structure():
    expected_layers = {"A": 11, "A-LRN": 11, "B": 13, "C": 16, "D": 16, "E": 19}
    for letter, config in configs.CONFIGS.items():
        assert config.weight_layers == expected_layers[letter]
        assert [block[0].filters for block in config.blocks] == [64, 128, 256, 512, 512]
    one_by_one = [c.kernel_size for block in configs.CONFIGS["C"].blocks for c in block]
    assert one_by_one.count(1) == 3


def test_name_resolution_accepts_letters_and_common_names():
    assert configs.resolve_model_name("vgg16_bn") == (configs.CONFIGS["D"], True)
    assert configs.resolve_model_name("A-LRN") == (configs.CONFIGS["A-LRN"], False)
    assert configs.resolve_model_name("a_lrn") == (configs.CONFIGS["A-LRN"], False)
    assert configs.resolve_model_name("vgg16_c") == (configs.CONFIGS["C"], False)
    assert configs.resolve_model_name("E_bn") == (configs.CONFIGS["E"], True)
    assert set(vgg_keras.list_models()) >= {"vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19", "vgg16_bn"}


@pytest.mark.parametrize("builder_name", sorted(NAMED_BUILDERS))
def test_named_builders_are_thin_wrappers(builder_name):
    letter, batch_norm = NAMED_BUILDERS[builder_name]
    builder = getattr(vgg_keras, builder_name)
    model = builder(include_top=False, weights=None, input_shape=(32, 32, 3), width_multiplier=1 / 16)
    reference = vgg_keras.build(
        letter, batch_norm=batch_norm, include_top=False, input_shape=(32, 32, 3), width_multiplier=1 / 16
    )
    assert [(layer.name, type(layer)) for layer in model.layers] == [
        (layer.name, type(layer)) for layer in reference.layers
    ]


def _copy_weights(source, target):
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def _same_layers(ours, theirs, ignore=()):
    def describe(model):
        # Input layers are auto-named ("input_layer_1", ...) by Keras, so compare their shapes only.
        return [
            (
                "input" if isinstance(layer, keras.layers.InputLayer) else layer.name,
                type(layer).__name__,
                layer.output.shape,
            )
            for layer in model.layers
            if layer.name not in ignore
        ]

    assert describe(ours) == describe(theirs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VGG16", "VGG19"])
def test_identity_with_keras_applications_top(name):
    theirs = getattr(keras.applications, name)(weights=None)
    ours = getattr(vgg_keras, name)(weights=None)  # the default graph is keras.applications' (no Dropout)
    _same_layers(ours, theirs)
    _copy_weights(theirs, ours)
    x = np.random.default_rng(0).uniform(-120, 120, size=(1, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["VGG16", "VGG19"])
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_identity_with_keras_applications_no_top(name, pooling):
    kwargs = dict(weights=None, include_top=False, pooling=pooling, input_shape=(48, 64, 3))
    theirs = getattr(keras.applications, name)(**kwargs)
    ours = getattr(vgg_keras, name)(**kwargs)
    # keras.applications leaves its pooling layer auto-named; ours is "avg_pool" / "max_pool".
    pooled = {"avg": ("avg_pool", theirs.layers[-1].name), "max": ("max_pool", theirs.layers[-1].name)}
    _same_layers(ours, theirs, ignore=pooled.get(pooling, ()))
    _copy_weights(theirs, ours)
    x = np.random.default_rng(1).uniform(-120, 120, size=(2, 48, 64, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_dropout_layers_follow_fc1_and_fc2_when_asked_and_none_by_default():
    names = [layer.name for layer in tiny(dropout=0.5).layers]
    assert names[names.index("fc1") + 1] == "fc1_dropout"
    assert names[names.index("fc2") + 1] == "fc2_dropout"
    assert tiny(dropout=0.5).get_layer("fc1_dropout").rate == 0.5
    assert not [n for n in (layer.name for layer in tiny().layers) if "dropout" in n]
    assert not [
        layer for layer in tiny(head="conv", input_shape=None).layers if isinstance(layer, keras.layers.Dropout)
    ]


def test_batch_norm_variant_layout():
    model = tiny("B", batch_norm=True)
    names = [layer.name for layer in model.layers]
    assert names[1:5] == ["block1_conv1", "block1_bn1", "block1_relu1", "block1_conv2"]
    assert model.get_layer("block1_conv1").activation.__name__ == "linear"
    assert model.get_layer("block1_conv1").use_bias  # torchvision keeps the conv bias


def test_lrn_sits_after_the_first_conv():
    names = [layer.name for layer in tiny("A-LRN").layers]
    assert names.index("block1_lrn") == names.index("block1_conv1") + 1
    assert "block1_lrn" not in [layer.name for layer in tiny("A").layers]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dense_and_conv_heads_agree_at_224(batch_norm):
    dense = vgg_keras.build("D", batch_norm=batch_norm, width_multiplier=0.125, fc_units=64, classes=10, dropout=0.0)
    conv = vgg_keras.to_fully_convolutional(dense)
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 224, 224, 3)).astype("float32")
    np.testing.assert_allclose(conv.predict(x, verbose=0), dense.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
    assert conv.get_layer("fc1").kernel.shape == (7, 7, 64, 64)
    assert conv.input_shape == (None, None, None, 3)


def test_conv_head_score_map_shape_on_384x512():
    conv = vgg_keras.build("A", head="conv", width_multiplier=1 / 16, fc_units=32, classes=10)
    scores = vgg_keras.score_map_model(conv)
    x = np.zeros((1, 384, 512, 3), "float32")
    assert scores.predict(x, verbose=0).shape == (1, 384 // 32 - 6, 512 // 32 - 6, 10)
    probabilities = conv.predict(x, verbose=0)
    assert probabilities.shape == (1, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_conv_head_averages_scores_before_softmax():
    conv = tiny(head="conv", input_shape=None, classifier_activation=None)
    x = np.random.default_rng(3).uniform(0, 255, size=(1, 96, 128, 3)).astype("float32")
    score_map = vgg_keras.score_map_model(conv).predict(x, verbose=0)
    np.testing.assert_allclose(conv.predict(x, verbose=0), score_map.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_to_dense_inverts_to_fully_convolutional():
    dense = tiny("C", dropout=0.0)
    back = vgg_keras.to_dense(vgg_keras.to_fully_convolutional(dense))
    assert back.input_shape == dense.input_shape
    for layer in dense.layers:
        for a, b in zip(layer.get_weights(), back.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert vgg_keras.to_fully_convolutional(vgg_keras.to_fully_convolutional(dense)).get_layer("fc1").kernel.shape[
        :2
    ] == (2, 2)


def test_feature_extractor_returns_block_pools_and_fc2():
    extractor = vgg_keras.feature_extractor(tiny())
    features = extractor(np.zeros((2, 64, 64, 3), "float32"))
    assert sorted(features) == ["block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool", "fc2"]
    assert tuple(features["block5_pool"].shape) == (2, 2, 2, 32)
    assert tuple(features["fc2"].shape) == (2, 32)
    with pytest.raises(ValueError, match="not in model"):
        vgg_keras.feature_extractor(tiny(), ["block9_pool"])


def test_init_from_shallower_copies_exactly_the_paper_layers():
    source = tiny("A")
    target = tiny("D", head="conv", input_shape=None)
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in target.layers if layer.weights}
    copied = vgg_keras.init_from_shallower(target, source)
    assert copied == ["block1_conv1", "block2_conv1", "block3_conv1", "block3_conv2", "fc1", "fc2", "predictions"]
    for name, old in before.items():
        new = target.get_layer(name).get_weights()
        src = source.get_layer(name).get_weights() if name in copied else None
        for index, (old_w, new_w) in enumerate(zip(old, new)):
            if src is None:
                np.testing.assert_array_equal(new_w, old_w)
            else:
                np.testing.assert_array_equal(new_w, src[index].reshape(new_w.shape))


def test_init_from_shallower_into_batch_norm_keeps_bn_fresh():
    source = tiny("A")
    target = tiny("E", batch_norm=True)
    vgg_keras.init_from_shallower(target, source)
    np.testing.assert_array_equal(
        target.get_layer("block1_conv1").get_weights()[0], source.get_layer("block1_conv1").get_weights()[0]
    )
    np.testing.assert_array_equal(target.get_layer("block1_bn1").get_weights()[0], np.ones(4))


def test_init_from_shallower_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="block1_conv1"):
        vgg_keras.init_from_shallower(tiny("D", width_multiplier=1 / 8), tiny("A"))


def test_paper_initialisation_is_normal_001():
    model = vgg_keras.build("A", kernel_initializer="paper", include_top=False, input_shape=(32, 32, 3))
    kernel = model.get_layer("block4_conv1").kernel.numpy()
    assert abs(kernel.std() - 0.01) < 5e-4 and abs(kernel.mean()) < 5e-4
    assert not model.get_layer("block4_conv1").bias.numpy().any()


@pytest.mark.parametrize("name", configs.MODEL_NAMES)
def test_keras_save_load_round_trip(name, tmp_path):
    x = np.random.default_rng(4).uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    save_load_round_trip(tiny(name), tmp_path, x)


def test_keras_save_load_conv_head(tmp_path):
    x = np.random.default_rng(5).uniform(0, 255, size=(1, 80, 96, 3)).astype("float32")
    save_load_round_trip(vgg_keras.to_fully_convolutional(tiny("A-LRN")), tmp_path, x, atol=0)


def test_input_tensor_and_weights_file(tmp_path):
    model = tiny()
    path = tmp_path / "tiny.weights.h5"
    model.save_weights(path)
    inputs = keras.Input((64, 64, 3))
    loaded = tiny(input_tensor=inputs, input_shape=None, weights=str(path))
    x = np.random.default_rng(6).uniform(0, 255, size=(1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(config="F"), "Unknown VGG configuration name='F'"),
        (dict(config="vgg17"), "Allowed: A, A-LRN"),
        (dict(input_shape=(16, 64, 3), include_top=False), "must be >= 32"),
        (dict(input_shape=(64, 64)), r"\(height, width, channels\)"),
        (dict(input_shape=(224, 224, 0)), "channels=0"),
        (dict(pooling="avg"), "pooling='avg' needs include_top=False"),
        (dict(pooling="sum", include_top=False), "pooling='sum'; allowed"),
        (dict(classes=10, weights="imagenet"), "classes=10 with pretrained"),
        (dict(classifier_activation="sigmoid", weights="imagenet"), "classifier_activation='sigmoid'"),
        (dict(head="conv", input_shape=(192, 256, 3)), "must be >= 224"),
        (dict(head="fcn"), "head='fcn'; allowed"),
        (dict(head="conv", include_top=False), "head='conv' needs include_top=True"),
        (dict(input_shape=(None, None, 3)), "dense head needs a fixed height and width"),
        (dict(dropout=1.0), r"dropout=1.0; allowed: a rate in \[0, 1\)"),
        (dict(width_multiplier=0), "width_multiplier=0"),
        (dict(base_size=100), "base_size=100; allowed: a multiple of 32"),
        (dict(config="vgg16_bn", batch_norm=False), "batch_norm=False"),
        (dict(weights="/no/such/file.h5"), "weights="),
    ],
)
def test_bad_arguments_raise_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vgg_keras.build(**kwargs)


def test_head_conversion_needs_a_classifier():
    with pytest.raises(ValueError, match="include_top=False"):
        vgg_keras.to_fully_convolutional(tiny(include_top=False, input_shape=(64, 64, 3)))


def test_get_model_takes_a_model_name_as_build_does():
    # Issue 12 item 4: get_model's own first parameter used to clash with build's name=.
    model = vgg_keras.get_model(
        "vgg11_bn", name="x", include_top=False, input_shape=(32, 32, 3), width_multiplier=1 / 16
    )
    assert model.name == "x"
    assert model.get_layer("block1_bn1") is not None
    assert vgg_keras.get_model("A", include_top=False, input_shape=(32, 32, 3), width_multiplier=1 / 16).name == "vgg11"


def test_model_name_must_be_a_string():
    with pytest.raises(TypeError, match="must be a string"):
        vgg_keras.build(16)


def test_models_build_and_run_under_jax():
    pytest.importorskip("jax")
    script = textwrap.dedent(
        """
        import numpy as np, keras, vgg_keras
        assert keras.backend.backend() == "jax"
        for name in ("vgg11_lrn", "vgg16_c_bn"):
            m = vgg_keras.build(name, width_multiplier=1/16, fc_units=16, classes=5, base_size=32,
                                input_shape=(32, 32, 3))
            conv = vgg_keras.to_fully_convolutional(m)
            x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
            np.testing.assert_allclose(conv.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
        print("jax ok")
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout


def test_bad_weights_fail_before_the_model_is_built(monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the model was built before the weights argument was checked")

    monkeypatch.setattr(models, "build_from_spec", no_build)
    with pytest.raises(ValueError, match="No published weights exist for vgg11_lrn"):
        vgg_keras.VGG11LRN(weights="imagenet")
    with pytest.raises(ValueError, match="neither None, a known tag"):
        vgg_keras.VGG16(weights="imagenet-caffe2")
