"""Deprecated module attributes: old names that still resolve, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping


def deprecated_attributes(
    module: str, aliases: Mapping[str, tuple[str, str]], stacklevel: int = 2
) -> Callable[[str], object]:
    """A module-level ``__getattr__`` that resolves old names to their new home, with a warning.

    Args:
        module: The module's ``__name__`` (named in the warning and the AttributeError).
        aliases: Old name -> (module that holds the new name, new name).
        stacklevel: Frames up to the caller that the warning names (2: the module's user).

    Returns:
        The ``__getattr__`` function to assign in `module`.
    """

    def __getattr__(name: str):
        if name not in aliases:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, new = aliases[name]
        warnings.warn(f"{module}.{name} is deprecated; use {home}.{new}.", DeprecationWarning, stacklevel=stacklevel)
        return getattr(importlib.import_module(home), new)

    return __getattr__
