"""Rebuilding a vgg_keras model layer by layer: another input, a cut, replaced layers.

Every vgg_keras model (from `build`, the trainer, a saved `.keras`) is a chain: an input
layer and then layers that each take the previous one's output. That is what lets a model
be re-wired without knowing how it was made: a new input size or channel count
(`vgg_keras.channels.adapt_model`), a new classifier (`vgg_keras.training.finetune`), or
another dtype policy (mixed precision).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import keras

__all__ = ["chain_layers", "clone_layer", "copy_weights", "nested_layers", "rebuild_chain"]


def chain_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of a functional chain model after its input layer, in order.

    Args:
        model: A functional `keras.Model`.

    Returns:
        The layers, first to last.

    Raises:
        ValueError: If the model is not a chain (branches, several inputs, a Sequential).
    """
    layers = list(model.layers)
    if not layers or not isinstance(layers[0], keras.layers.InputLayer) or len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} is not a functional model with one input; allowed: a vgg_keras model.")
    for previous, layer in itertools.pairwise(layers):
        # `input`/`output`: the tensors of a layer's first call, the one that built this graph.
        if _first_input(layer) is not previous.output:
            raise ValueError(
                f"model {model.name!r} is not a chain of layers (layer {layer.name!r} does not take "
                f"{previous.name!r}'s output alone); allowed: a vgg_keras model."
            )
    return layers[1:]


def _first_input(layer: keras.layers.Layer):
    try:
        return layer.input
    except AttributeError:  # never called: no input
        return None


def nested_layers(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Every layer inside `model`, depth first: each layer, then the layers of a nested model.

    Args:
        model: A `keras.Model` (a plain layer has no `layers`: none).

    Returns:
        The layers, each once (a layer shared by two nested models too).
    """
    found = [child for layer in getattr(model, "layers", []) for child in [layer, *nested_layers(layer)]]
    return list({id(layer): layer for layer in found}.values())


def clone_layer(layer: keras.layers.Layer, dtype=None) -> keras.layers.Layer:
    """A fresh layer of the same class and config (no weights), optionally with another dtype policy."""
    config = layer.get_config()
    if dtype is not None:
        config["dtype"] = dtype
    return layer.__class__.from_config(config)


def copy_weights(pairs: Sequence[tuple[keras.layers.Layer, keras.layers.Layer]]) -> None:
    """Copies the weights of each `(source, clone)` pair that has any."""
    for source, clone in pairs:
        if source.weights:
            clone.set_weights(source.get_weights())


def rebuild_chain(
    model: keras.Model,
    *,
    input_shape: Sequence[int | None] | None = None,
    keep: Callable[[keras.layers.Layer], bool] | None = None,
    clone: Callable[[keras.layers.Layer], keras.layers.Layer] = clone_layer,
    before: keras.layers.Layer | None = None,
):
    """Re-applies clones of a chain model's layers to a new input.

    Args:
        model: A chain model (see `chain_layers`).
        input_shape: Shape of the new input without the batch axis (default: the model's).
        keep: Layers are cloned while `keep(layer)` is true; the chain is cut at the first
            layer for which it is false (default: all layers).
        clone: Makes the new layer from an old one (default: `clone_layer`).
        before: A new layer applied to the input ahead of the clones (e.g. a missing
            preprocessing layer).

    Returns:
        `(inputs, outputs, pairs)`: the new input tensor, the last kept layer's output and
        the `(old, new)` layer pairs (weights not copied yet: `copy_weights(pairs)`).
    """
    layers = chain_layers(model)
    shape = tuple(input_shape) if input_shape is not None else tuple(model.input_shape[1:])
    inputs = keras.Input(shape=shape, name=model.layers[0].name)
    x, pairs = (inputs if before is None else before(inputs)), []
    for layer in layers:
        if keep is not None and not keep(layer):
            break
        new = clone(layer)
        x = new(x)
        pairs.append((layer, new))
    return inputs, x, pairs
