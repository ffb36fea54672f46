"""Two CPU processes (gloo) train together and end with identical weights; only rank 0 writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_data import tiny_method_config

RANK_SCRIPT = """
import hashlib, json, os, sys
from pathlib import Path
import torch
from medgan.config.loader import load_config
from medgan.config.schema import ExperimentConfig
from medgan.training.distributed import init_distributed, shutdown_distributed
from medgan.training.engine import Trainer

config = load_config(sys.argv[1], ExperimentConfig)
run_dir = Path(sys.argv[2])
context = init_distributed("cpu")
run_dir.mkdir(parents=True, exist_ok=True)
trainer = Trainer(config, run_dir, context, quiet=True)
trainer.fit()
digest = hashlib.sha256()
for name, module in sorted(trainer.networks.items()):
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode()); digest.update(tensor.detach().cpu().numpy().tobytes())
states = trainer.method_state.items()
probabilities = {name: state.probability for name, state in states if hasattr(state, "probability")}
(run_dir.parent / f"rank{context.rank}.json").write_text(
    json.dumps({"hash": digest.hexdigest(), "world": context.world_size, "step": trainer.step, "p": probabilities})
)
shutdown_distributed(context)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_on_two_ranks(config_path: Path, tmp_path: Path) -> tuple[Path, list[dict]]:
    """Train ``config_path`` on 2 gloo ranks; returns the run folder and each rank's report."""
    script = tmp_path / "rank_main.py"
    script.write_text(RANK_SCRIPT)
    run_dir = tmp_path / "runs" / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
        str(config_path),
        str(run_dir),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    # Own session, so a hang can be ended with every rank process, not just the launcher.
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        _, stderr = launcher.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        pytest.fail("the 2-rank training run hung (killed after 180 s)")
    assert launcher.returncode == 0, stderr[-4000:]
    return run_dir, [json.loads((run_dir.parent / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.ddp
@pytest.mark.slow
def test_two_cpu_ranks_hold_identical_weights(write_config, tmp_path: Path) -> None:
    run_dir, ranks = _train_on_two_ranks(write_config(steps=3, validate_every=0), tmp_path)
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["step"] == ranks[1]["step"] == 3
    assert ranks[0]["hash"] == ranks[1]["hash"]
    train_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in train_rows if row["kind"] == "train"] == [1, 2, 3]  # rank 0 only
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step_000003"


@pytest.mark.ddp
@pytest.mark.slow
def test_two_ranks_adapt_one_ada_probability(tiny_datalist: Path, tmp_path: Path) -> None:
    """Each rank sees other reals; the signs are summed over ranks, so p (and the weights) stay identical."""
    config = tiny_method_config(tiny_datalist, "cgan3d", steps=4, validate_every=0, sample_every=0)
    config["model"]["ada"] = {"initial_p": 0.5, "interval": 1, "speed_images": 4}
    path = tmp_path / "cgan3d.yaml"
    path.write_text(yaml.safe_dump(config))
    _, ranks = _train_on_two_ranks(path, tmp_path)
    assert ranks[0]["p"]["ada"] == ranks[1]["p"]["ada"] != 0.5  # it moved, by the same steps on both ranks
    assert ranks[0]["hash"] == ranks[1]["hash"]
