"""What the benchmark scripts share: the machine they ran on, and writing a results JSON.

Scripts import it as a sibling (each puts ``benchmarks/`` on ``sys.path``; the folder is not a package).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch

from medgan.io import atomic_write_text
from medgan.io.strict_json import strict_json


def environment() -> dict[str, Any]:
    """torch version and threads, CPU count, load average (a busy machine skews timings) and the CPU."""
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }


def write_results(path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as strict JSON (no NaN / inf: they become null), written atomically; returns what was written."""
    strict = strict_json(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(strict, indent=2, allow_nan=False) + "\n")
    return strict
