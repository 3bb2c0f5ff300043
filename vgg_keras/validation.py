"""Argument checks with one message style: ``name=value; allowed: ...`` (a ValueError/TypeError).

Every public function of vgg_keras checks its arguments before it builds or reads
anything, so a wrong call fails in a second with a message naming the argument, the
value received and what is allowed.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["first_few"]

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
