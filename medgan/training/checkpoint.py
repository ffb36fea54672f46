"""Checkpoints: safetensors weights + a weights-only-loadable state file, saved atomically.

Layout inside a run folder::

    checkpoints/
      step_000500/
        networks.safetensors   every network's state_dict, keys "<network>.<param>"
        ema.safetensors        the EMA copies (same key scheme; may hold no tensors)
        state.pt               step, optimizer states, grad scaler, RNG states, counters
      latest                   text file naming the newest complete step folder

A step folder is written under a staging name and renamed into place
(:func:`medgan.io.atomic.atomic_directory`), and ``latest`` is replaced atomically
only after that, so a crash mid-save leaves ``latest`` pointing at the previous
complete checkpoint. ``state.pt`` holds only tensors and plain Python values so it
loads with ``torch.load(..., weights_only=True)``. Non-finite weights are refused.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from medgan.errors import TrainingError
from medgan.io.atomic import atomic_directory, atomic_write_text
from medgan.training.run_layout import LATEST_FILE

NETWORKS_FILE = "networks.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
_STEP_DIR = re.compile(r"^step_(\d{6,})$")


def step_dir_name(step: int) -> str:
    """Folder name of the checkpoint taken after ``step`` optimisation steps."""
    return f"step_{step:06d}"


def flatten_state_dicts(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """One flat ``"<network>.<key>" -> tensor`` dict (contiguous CPU copies) for safetensors."""
    flat: dict[str, torch.Tensor] = {}
    for network_name, module in modules.items():
        for key, tensor in module.state_dict().items():
            flat[f"{network_name}.{key}"] = tensor.detach().to("cpu").contiguous().clone()
    return flat


def load_flat_state_dicts(modules: Mapping[str, nn.Module], flat: Mapping[str, torch.Tensor], source: Path) -> None:
    """Load a flat dict written by :func:`flatten_state_dicts` into ``modules`` (strict)."""
    for network_name, module in modules.items():
        prefix = f"{network_name}."
        state = {key[len(prefix) :]: tensor for key, tensor in flat.items() if key.startswith(prefix)}
        if not state and any(True for _ in module.state_dict()):
            raise TrainingError(
                f"checkpoint holds no weights for network {network_name!r}",
                path=source,
                fix="load it with the config it was trained with (method and model sections)",
            )
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise TrainingError(
                f"weights of network {network_name!r} do not fit the network built from the config: {err}",
                path=source,
                fix="load the checkpoint with the config saved in its run folder",
            ) from None


def nonfinite_tensors(flat: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of floating tensors holding NaN or Inf."""
    return [key for key, tensor in flat.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]


def capture_rng_states() -> dict[str, Any]:
    """Every RNG stream as tensors / plain values (python random, numpy, torch CPU and CUDA).

    numpy's legacy global stream is captured because libraries draw from it.
    """
    version, python_state, gauss_next = random.getstate()
    numpy_name, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state(legacy=True)  # noqa: NPY002
    return {
        "python": {"version": version, "state": torch.tensor(python_state, dtype=torch.int64), "gauss": gauss_next},
        "numpy": {
            "name": str(numpy_name),
            "keys": torch.from_numpy(np.asarray(numpy_keys, dtype=np.int64)),
            "pos": int(numpy_pos),
            "has_gauss": int(numpy_has_gauss),
            "gauss": float(numpy_gauss),
        },
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Restore what :func:`capture_rng_states` captured."""
    python = states["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss"]))
    numpy = states["numpy"]
    # The legacy global stream is what third-party code draws from, so it is the one to restore.
    np.random.set_state(  # noqa: NPY002
        (numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["gauss"])
    )
    torch.set_rng_state(states["torch_cpu"])
    if states["torch_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch_cuda"])


def list_checkpoints(checkpoint_root: Path) -> list[tuple[int, Path]]:
    """Complete step folders under ``checkpoint_root`` as ``(step, path)``, oldest first."""
    if not checkpoint_root.is_dir():
        return []
    found = []
    for child in checkpoint_root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(checkpoint_root: Path) -> Path | None:
    """The step folder ``latest`` names, or None when the run has no checkpoint yet."""
    pointer = checkpoint_root / LATEST_FILE
    if not pointer.is_file():
        return None
    target = checkpoint_root / pointer.read_text(encoding="utf-8").strip()
    if not (target / STATE_FILE).is_file():
        raise TrainingError(
            f"'latest' points at {target.name}, which is not a complete checkpoint",
            path=pointer,
            fix="edit it to name an existing step_XXXXXX folder, or delete it to start over",
        )
    return target


def save_checkpoint(
    checkpoint_root: Path,
    step: int,
    networks: Mapping[str, nn.Module],
    ema_networks: Mapping[str, nn.Module],
    state: Mapping[str, Any],
    *,
    keep_last: int,
) -> Path:
    """Write ``step_XXXXXX/`` atomically, point ``latest`` at it, prune to the last ``keep_last``.

    Raises TrainingError (and writes nothing) when any weight is non-finite, so a
    diverged model never becomes the checkpoint a restore or resume trusts.
    """
    weights = flatten_state_dicts(networks)
    ema_weights = flatten_state_dicts(ema_networks)
    bad = nonfinite_tensors(weights) + [f"ema:{key}" for key in nonfinite_tensors(ema_weights)]
    if bad:
        raise TrainingError(
            f"refusing to save checkpoint at step {step}: non-finite weights in {', '.join(bad[:5])}",
            path=checkpoint_root,
            fix="lower train.lr or use precision fp32; the last good checkpoint is kept",
        )
    final_dir = checkpoint_root / step_dir_name(step)
    metadata = {"format": "medgan-checkpoint-v1", "step": str(step)}
    with atomic_directory(final_dir, overwrite=True) as staging:
        save_file(weights, str(staging / NETWORKS_FILE), metadata=metadata)
        save_file(ema_weights, str(staging / EMA_FILE), metadata=metadata)
        torch.save(dict(state), staging / STATE_FILE)
    atomic_write_text(checkpoint_root / LATEST_FILE, final_dir.name + "\n")
    for _, old_dir in list_checkpoints(checkpoint_root)[:-keep_last]:
        if old_dir != final_dir:
            shutil.rmtree(old_dir, ignore_errors=True)
    return final_dir


def load_checkpoint_weights(step_dir: Path, *, ema: bool) -> dict[str, torch.Tensor]:
    """The flat weights of a step folder (``ema.safetensors`` with ``ema``)."""
    path = step_dir / (EMA_FILE if ema else NETWORKS_FILE)
    if not path.is_file():
        raise TrainingError("checkpoint weights file is missing", path=path, fix="pick another checkpoint")
    return load_file(str(path))


def load_checkpoint_state(step_dir: Path) -> dict[str, Any]:
    """The ``state.pt`` of a step folder, loaded with ``weights_only=True``."""
    return torch.load(step_dir / STATE_FILE, map_location="cpu", weights_only=True)
