"""Strict JSON: non-finite floats become null at any depth; everything else is kept."""

from __future__ import annotations

import json
import math

from medgan.io.strict_json import strict_json


def test_nan_and_inf_become_null_at_any_depth() -> None:
    value = {"a": [math.nan, (1.0, math.inf)], "b": -math.inf, "c": {"d": 2, "e": "text"}}
    assert strict_json(value) == {"a": [None, [1.0, None]], "b": None, "c": {"d": 2, "e": "text"}}
    json.dumps(strict_json(value), allow_nan=False)  # a strict writer accepts it
