"""Deprecated: moved to `vgg_keras.tools.reference` (tooling / test oracle); this name still imports it."""

import importlib
import sys
import warnings

warnings.warn("vgg_keras.reference is deprecated; use vgg_keras.tools.reference.", DeprecationWarning, stacklevel=2)
# The same module object under both names, so attribute changes (tests' monkeypatch) reach both.
sys.modules[__name__] = importlib.import_module("vgg_keras.tools.reference")
