"""Strict JSON: NaN and infinity are not JSON, so reports write them as null.

Python's ``json`` writes ``NaN`` by default, which most other JSON readers reject;
every report medgan writes (evaluation, benchmarks) goes through :func:`strict_json`
and is dumped with ``allow_nan=False``.
"""

from __future__ import annotations

import math
from typing import Any


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth of dicts, lists and tuples) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value
