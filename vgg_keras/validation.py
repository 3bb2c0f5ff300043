"""Argument checks with one message style: ``name=value; allowed: ...`` (a ValueError/TypeError).

Every public function of vgg_keras checks its arguments before it builds or reads
anything, so a wrong call fails in a second with a message naming the argument, the
value received and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_choice", "check_int", "check_scales", "first_few", "reject"]

_MAX_LISTED = 10


def first_few(items: Sequence[str], limit: int = _MAX_LISTED) -> str:
    """The first `limit` items joined by commas, "and N more" after them, "none" for none.

    Args:
        items: What to list (missing layers, unexpected keys ...).
        limit: How many to name.

    Returns:
        A phrase for an error message.
    """
    if not items:
        return "none"
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def reject(name: str, value: Any, allowed: str, error: type[Exception] = ValueError) -> Exception:
    """The error for a bad argument, in the one style ``name=value; allowed: <allowed>.``.

    Args:
        name: The argument's name (``config.training.strategy`` for a config field).
        value: The value received.
        allowed: What is allowed, as a phrase ("an integer >= 1", "'a', 'b'").
        error: The exception class (TypeError for a wrong type).

    Returns:
        The exception, for the caller to raise (so tracebacks end at the check).
    """
    return error(f"{name}={value!r}; allowed: {allowed}.")


def check_choice(name: str, value: Any, allowed: Sequence) -> Any:
    """Returns `value` if it is one of `allowed`.

    Raises:
        ValueError: Naming the argument, the value and the allowed values.
    """
    if value not in allowed:
        raise reject(name, value, ", ".join(map(repr, allowed)))
    return value


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Returns `value` as an int if it is an integer (not a bool) >= `minimum`.

    Raises:
        ValueError: Naming the argument, the value and the minimum.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise reject(name, value, f"an integer >= {minimum}")
    return int(value)


def check_scales(scales: Any, minimum: int, name: str = "scales") -> tuple[int, ...]:
    """One test scale Q or several distinct ones, each an integer >= `minimum`, as a tuple.

    Raises:
        ValueError: Naming the argument, the value and the minimum.
    """
    values = (scales,) if isinstance(scales, (int, np.integer)) else tuple(scales)
    if (
        not values
        or len(set(values)) != len(values)
        or any(isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < minimum for q in values)
    ):
        raise reject(name, scales, f"one or more distinct integers >= {minimum} (smallest image sides)")
    return tuple(int(q) for q in values)
