"""Tooling around the model zoo, not needed to build or run a model.

- `convert`: any supported weights file -> `.weights.h5` + `.keras`, checked against the
  source framework (what ``recipes/convert_weights.py`` runs; `vgg_keras.convert_weights`).
- `reference`: forward passes of the torchvision layout in PyTorch and in plain NumPy,
  independent of Keras: the oracles the conversion and the tests compare against.

`vgg_keras.convert` and `vgg_keras.reference` still import (with a DeprecationWarning).
"""
