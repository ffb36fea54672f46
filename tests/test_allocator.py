"""The allocator setting: with it, a network step repeated on freed memory costs no page faults."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from medgan.allocator import ENV_VARIABLE

# In a fresh process (the setting is one-way): the page faults of the third pass of a small
# network-like step (a 3x3x3 convolution on 64^3 x 8 channels, element-wise ops, a x2 upsampling
# to 64 MB) whose tensors are all freed after each pass.
PROBE = """
import json, resource, torch
from medgan.allocator import keep_freed_memory
done = keep_freed_memory()
volume, weight = torch.ones(1, 8, 64, 64, 64), torch.ones(8, 8, 3, 3, 3) / 216
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    hidden = torch.relu(torch.nn.functional.conv3d(volume, weight, padding=1) * 2 + 1)
    upsampled = torch.nn.functional.interpolate(hidden, scale_factor=2) + 1
    del hidden, upsampled
print(json.dumps({"done": done, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(allocator: str | None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != ENV_VARIABLE}
    if allocator is not None:
        env[ENV_VARIABLE] = allocator
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting exists for glibc only")
def test_kept_memory_is_reused_without_page_faults() -> None:
    pages = 64 * 2**20 // 4096  # of the largest tensor alone
    tuned, system = _probe(None), _probe("system")
    assert tuned["done"].startswith("glibc malloc keeps freed memory")
    assert system["done"] == f"system allocator ({ENV_VARIABLE}=system)"
    # Fresh mappings fault once per 4 KB page (measured: ~33,000), or once per 2 MB where the
    # kernel backs every mapping with transparent huge pages (THP "always": ~40 for these tensors).
    assert system["faults"] > 16
    assert tuned["faults"] < pages // 20 and tuned["faults"] * 10 < system["faults"]  # measured: 0
