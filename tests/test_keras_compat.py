"""Keras internals vgg_keras relies on (vgg_keras._keras_compat), and the public APIs that replaced others.

A Keras upgrade that renames or changes one of the private hooks fails here, by name.
"""

import inspect
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import vgg_keras
from vgg_keras import _keras_compat, surgery, training
from vgg_keras.training import strategy as strategy_lib

# --------------------------------------------------------------------------- the private hooks


def test_the_private_build_hooks_have_the_signatures_we_replace_and_call():
    hook = inspect.signature(keras.Model._maybe_symbolic_build)
    assert list(hook.parameters) == ["self", "iterator", "data_batch"], f"Keras {keras.__version__} changed the hook"
    assert "data_batch" in inspect.signature(keras.Model._symbolic_build).parameters


def _compiled_under(strategy):
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="fc")])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def test_fit_calls_the_replaced_build_with_its_iterator_and_keeps_the_model_class(tmp_path, monkeypatch):
    built_from = []
    build = _keras_compat._build_on_local_batch

    def spy(model, iterator=None, data_batch=None):
        built_from.append("iterator" if iterator is not None else "batch")
        build(model, iterator=iterator, data_batch=data_batch)

    monkeypatch.setattr(_keras_compat, "_build_on_local_batch", spy)
    # A one-device MirroredStrategy runs the same trainer path as a multi-worker one (a real
    # MultiWorkerMirroredStrategy needs a cluster: tests/test_training_distributed.py).
    model = _compiled_under(tf.distribute.MirroredStrategy(["/cpu:0"]))
    own_class = type(model)
    data = tf.data.Dataset.from_tensor_slices((np.ones((8, 4), "float32"), np.zeros(8, "int64"))).batch(4)
    with _keras_compat._multi_worker_steps(model):
        history = model.fit(data, epochs=1, verbose=0, shuffle=False)
        assert type(model) is own_class
        model.save(tmp_path / "during_fit.keras")  # what BestCheckpoint does inside fit
    assert built_from == ["iterator"], "fit no longer builds through _maybe_symbolic_build(iterator=...)"
    assert model.built and set(history.history) == {"loss", "accuracy"}
    assert np.ndim(history.history["loss"][0]) == 0 and np.isfinite(history.history["loss"][0])
    assert not {"train_step", "test_step", "_maybe_symbolic_build"} & set(vars(model)), "the overrides are removed"
    restored = keras.saving.load_model(tmp_path / "during_fit.keras")
    assert type(restored) is own_class
    np.testing.assert_allclose(restored.get_layer("fc").kernel.numpy(), model.get_layer("fc").kernel.numpy())


def test_the_steps_return_rank1_logs():
    model = _compiled_under(tf.distribute.get_strategy())
    batch = (tf.ones((4, 4)), tf.zeros((4,), tf.int64))
    with _keras_compat._multi_worker_steps(model):
        model.build((None, 4))
        logs = model.train_step(batch)
        assert {key: tuple(value.shape) for key, value in logs.items()} == {"loss": (1,), "accuracy": (1,)}
        assert {key: tuple(value.shape) for key, value in model.test_step(batch).items()} == {
            "loss": (1,),
            "accuracy": (1,),
        }


def test_multi_worker_fit_only_under_multi_worker_and_restores_on_errors():
    model = _compiled_under(tf.distribute.get_strategy())
    # Only the strategy's type matters here; a real multi-worker strategy needs TF_CONFIG.
    strategy = object.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    with pytest.raises(RuntimeError, match="fit failed"):
        with _keras_compat.multi_worker_fit(model, strategy):
            assert {"train_step", "test_step", "_maybe_symbolic_build"} <= set(vars(model))
            raise RuntimeError("fit failed")
    assert not {"train_step", "test_step", "_maybe_symbolic_build"} & set(vars(model))
    with _keras_compat.multi_worker_fit(model, tf.distribute.get_strategy()):
        assert not {"train_step", "test_step", "_maybe_symbolic_build"} & set(vars(model)), "others: untouched"


def test_no_module_of_the_package_reaches_into_keras_src():
    root = os.path.dirname(vgg_keras.__file__)
    offenders = []
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name), encoding="utf-8") as handle:
                    if "keras.src" in handle.read():
                        offenders.append(os.path.relpath(os.path.join(directory, name), root))
    assert offenders == []


# --------------------------------------------------------------------------- public replacements


def test_nested_layers_reach_into_nested_models_once():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="inner_fc")], name="inner")
    inputs = keras.Input((4,))
    outer_fc = keras.layers.Dense(2, name="outer_fc")
    model = keras.Model(inputs, outer_fc(inner(inputs)))
    assert surgery.nested_layers(model) == [model.layers[0], inner, inner.layers[0], outer_fc]
    assert training.apply_weight_decay(model, 5e-4) == 2, "the nested model's kernel is decayed too"
    assert inner.layers[0].kernel.regularizer is not None and outer_fc.kernel.regularizer is not None
    assert strategy_lib._batch_norm_layers(model) == []


def test_chain_layers_accepts_a_vgg_and_rejects_what_is_not_a_chain():
    model = vgg_keras.build("A", width_multiplier=1 / 16, fc_units=32, classes=10, input_shape=(64, 64, 3))
    assert surgery.chain_layers(model) == model.layers[1:]
    inputs = keras.Input((4,))
    first = keras.layers.Dense(3, name="first")(inputs)
    side = keras.layers.Dense(3, name="side")(inputs)  # takes the input, not the previous layer's output
    skip = keras.Model(inputs, keras.layers.Add()([first, side]))
    with pytest.raises(ValueError, match="is not a chain of layers"):
        surgery.chain_layers(skip)
