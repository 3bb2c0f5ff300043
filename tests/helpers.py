"""Helpers shared by the tests (importable because pytest puts tests/ on sys.path)."""

import os

import keras
import numpy as np

# The repository root: recipes are run by absolute path, so no test depends on the cwd.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def save_load_round_trip(
    model: keras.Model, directory, inputs, *, rtol: float = 1e-5, atol: float = 1e-6
) -> keras.Model:
    """Saves `model` as `.keras`, loads it back and asserts it computes the same outputs.

    As keras-hub's `run_model_saving_test`: the restored model must be of the same class,
    carry the same weights (values, not only shapes) and the same vgg_keras spec (a `VGG`'s
    `.spec`), and give the same predictions on `inputs`.

    Args:
        model: The model to save.
        directory: Where to write `<model.name>.keras` (e.g. pytest's `tmp_path`).
        inputs: A batch to compare the predictions on.
        rtol: Relative tolerance of the comparison.
        atol: Absolute tolerance of the comparison.

    Returns:
        The restored model, for further checks.
    """
    path = os.path.join(str(directory), f"{model.name}.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert getattr(restored, "spec", None) == getattr(model, "spec", None)
    assert [w.path for w in restored.weights] == [w.path for w in model.weights]
    for saved, loaded in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved), err_msg=loaded.path
        )
    expected = model.predict(inputs, verbose=0)
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, rtol=rtol, atol=atol)
    return restored
