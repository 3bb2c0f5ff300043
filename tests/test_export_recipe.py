"""recipes/export.py with a model given by name: the build flags, --data_dir, and the
normalisation a weights file brings (recorded by `weights.save_weights`).
"""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from helpers import ROOT

from vgg_keras import models, preprocessing, weights
from vgg_keras.export import saved_model

NARROW = dict(width_multiplier=1 / 16, fc_units=32, base_size=32)


def test_named_model_takes_its_weights_preprocessing_and_the_build_flags(tmp_path):
    trained = models.build("A", weights=None, classes=12, **NARROW)
    weights_path = weights.save_weights(trained, str(tmp_path / "a.weights.h5"), preprocessing="torch")
    command = [
        sys.executable,
        os.path.join(ROOT, "recipes", "export.py"),
        "--model=A",
        f"--weights={weights_path}",
        "--width_multiplier=0.0625",
        "--fc_units=32",
        "--base_size=32",
        "--dataset=vgg_shapes/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--export_root={tmp_path / 'savedmodels'}",
        "--model_name=narrow",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isdir(tmp_path / "tfds" / "vgg_shapes")  # --data_dir reached the source
    version_dir = tmp_path / "savedmodels" / "narrow" / "1"
    info = json.loads((version_dir / saved_model.EXPORT_INFO).read_text())
    assert info["preprocessing"] == saved_model.PREPROCESSING_LAYER and len(info["class_names"]) == 12
    assert info["resize_size"] == 37  # no training run beside the model: 256/224 of the 32 px crop
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    served = tf.saved_model.load(str(version_dir)).signatures["predict_float"](inputs=tf.constant(images))
    expected = trained(preprocessing.preprocess_input(images, mode="torch"), training=False)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
