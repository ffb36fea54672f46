"""Generation throughput: the ``medgan generate`` path against a plain eager fp32 loop, side by side.

One randomly initialised ``cond_generator3d`` per grid (64^3 and 128^3; the cost of
a forward pass does not depend on the weights), in one process:

* ``eager_fp32``: the baseline, one sample per call under ``torch.no_grad``, fp32,
  contiguous memory, upsampling blocks in their direct form (nearest x2, then the
  convolution on the fine grid);
* ``generate``: what ``medgan generate`` runs (``pipelines.generate.BatchedSampler``'s
  call: channels-last 3D weights, ``torch.inference_mode``, batches of ``--batch-size``,
  the precision that ``inference.precision: auto`` picks on this machine: bf16 on CPUs
  with native bf16 (AMX or AVX-512 BF16), fp32 elsewhere; and the allocator setting the
  CLI applies, :func:`medgan.allocator.keep_freed_memory`), at every batch size of the sweep;
* variants that isolate one setting each (inference mode alone, bf16 alone, the
  coarse-grid upsampling convolution alone (:mod:`medgan.models.upsample_conv`, what the
  generator runs), contiguous memory at the largest batch (generate runs
  channels-last 3D), the generate path at batch 2 under the C library's default
  allocator), so the table shows what helps and what does not. The allocator setting
  cannot be undone in a process, so every such path (of every grid) runs first, then the
  setting, then the generate paths.

Each figure is volumes per second (after one warm-up call), its ratio to the
eager baseline, peak RSS growth while it ran (the kernel's high-water mark reset
before each path), and achieved GFLOP/s (``torch.utils.flop_counter`` counts the
generator's FLOPs) as a fraction of this CPU's measured matrix-multiply peak in the
same precision (a 2048^2 ``torch.mm``). The CPU's feature flags are in the result.

Sample quality (``quality``: tissue statistics, class accuracy of samples by a
real-data classifier, diversity vs real, with and without ADA at 16 and 64 training
volumes) is measured by ``benchmarks/generation_quality.py`` (see its docstring);
``--part`` picks what runs, and each part replaces only its own keys in the results.

    python benchmarks/generation.py                          # throughput (~5 min) + quality (~20 min), 2 cores
    python benchmarks/generation.py --part throughput        # throughput only; keeps the stored quality
    python benchmarks/generation.py --smoke --out /tmp/g.json   # 16^3, tiny networks, under a minute
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in (REPO, REPO / "benchmarks"):  # the package, and sibling scripts (common)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import torch  # noqa: E402
from common import environment, write_results  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from medgan.allocator import keep_freed_memory  # noqa: E402
from medgan.models import build_network  # noqa: E402
from medgan.models.conditional import use_coarse_grid_upsampling  # noqa: E402
from medgan.precision import autocast, cpu_features, native_bf16, resolve_inference_precision  # noqa: E402
from pipelines.generate import prepare_for_sampling  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "generation.json"
FULL = {"grids": (64, 128), "batch_sizes": (1, 2, 4, 8), "channels": [128, 64, 32, 16, 8], "repeats": 5}
SMOKE = {"grids": (16,), "batch_sizes": (1, 2), "channels": [16, 8, 4], "repeats": 1}
TARGET_SPEEDUP = 4.0
LATENT = 128


def sibling(name: str) -> Any:
    """Another script of ``benchmarks/`` as a module (benchmarks/ is not a package).

    ``translate_memory`` gives reset_peak_rss / peak_rss_mb; ``generation_quality`` the quality part.
    """
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5, budget_s: float = 5.0) -> float:
    """Measured GFLOP/s of a square ``torch.mm`` in ``dtype`` (the CPU's practical peak), in about ``budget_s``.

    A CPU without native bf16 (no AVX-512 BF16 / AMX) runs bf16 matmuls through a slow
    fallback: 5 products at 2048 took hours on a 2-core AVX2 EPYC. A 256 probe estimates the
    rate first and the edge is halved until the measurement fits the budget.
    """
    probe = torch.randn(256, 256, dtype=dtype)
    torch.mm(probe, probe)
    started = time.perf_counter()
    torch.mm(probe, probe)
    probe_rate = 2 * 256**3 / max(time.perf_counter() - started, 1e-9)
    while size > 256 and 2 * size**3 * (repeats + 1) / probe_rate > budget_s:
        size //= 2
    left, right = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(left, right)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(left, right)
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e9


def generator_flops(generator: torch.nn.Module, batch: int) -> int:
    """FLOPs of one forward pass of ``batch`` samples (torch's flop counter; convs and matmuls)."""
    noise, labels = torch.randn(batch, LATENT), torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(noise, labels)
    return int(counter.get_total_flops())


def build_generator(grid: int, channels: list[int]) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = {"name": "cond_generator3d", "out_size": [grid] * 3, "channels": channels, "latent_dim": LATENT}
    return build_network(spec).eval()


def time_path(call: Callable[[], object], volumes_per_call: int, repeats: int, memory: Any) -> dict[str, Any]:
    """Volumes per second of ``call`` (after one warm-up), and the peak RSS growth while it ran."""
    call()
    baseline = memory.reset_peak_rss()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {
        "seconds_per_call": median,
        "volumes_per_second": volumes_per_call / median,
        "peak_rss_growth_mb": round(memory.peak_rss_mb() - baseline, 1),
    }


class GridBench:
    """The paths of one grid (see the module docstring); the generators are built once."""

    def __init__(self, grid: int, settings: dict[str, Any], precision: str) -> None:
        self.grid, self.settings, self.precision = grid, settings, precision
        self.generator = build_generator(grid, settings["channels"])  # the coarse-grid form, contiguous
        self.sampling_generator = prepare_for_sampling(build_generator(grid, settings["channels"]))  # generate's
        self.direct_generator = use_coarse_grid_upsampling(build_generator(grid, settings["channels"]), False)
        self.largest = max(settings["batch_sizes"])
        self.noise_all = torch.randn(self.largest, LATENT)
        self.labels_all = torch.arange(self.largest) % 2
        self.paths: dict[str, dict[str, Any]] = {}

    def _eager_loop(self, batch: int) -> Callable[[], object]:
        def run() -> None:
            with torch.no_grad():
                for index in range(batch):
                    self.direct_generator(self.noise_all[index : index + 1], self.labels_all[index : index + 1])

        return run

    def _batched(self, batch: int, *, mode: str, use_precision: str, model: torch.nn.Module) -> Callable[[], object]:
        def run() -> None:
            context = torch.inference_mode() if mode == "inference" else torch.no_grad()
            with context, autocast(use_precision, torch.device("cpu")):
                model(self.noise_all[:batch], self.labels_all[:batch]).float()

        return run

    def reference_plan(self) -> list[tuple[str, Callable[[], object], int, str]]:
        """The baseline and the one-setting variants, timed under the C library's default allocator."""
        largest, precision = self.largest, self.precision
        plan = [
            ("eager_fp32", self._eager_loop(largest), largest, "fp32"),
            (
                "inference_mode_fp32_batch1",
                self._batched(1, mode="inference", use_precision="fp32", model=self.direct_generator),
                1,
                "fp32",
            ),
            (
                "coarse_grid_fp32_batch1",
                self._batched(1, mode="inference", use_precision="fp32", model=self.generator),
                1,
                "fp32",
            ),
            (
                f"contiguous_{precision}_batch{largest}",
                self._batched(largest, mode="inference", use_precision=precision, model=self.generator),
                largest,
                precision,
            ),
        ]
        if native_bf16():
            bf16_direct = self._batched(1, mode="inference", use_precision="bf16", model=self.direct_generator)
            plan.append(("bf16_batch1", bf16_direct, 1, "bf16"))
        batch = min(2, largest)
        plan.append(
            (
                f"generate_batch{batch}_system_allocator",
                self._batched(batch, mode="inference", use_precision=precision, model=self.sampling_generator),
                batch,
                precision,
            )
        )
        return plan

    def generate_plan(self) -> list[tuple[str, Callable[[], object], int, str]]:
        """What ``medgan generate`` runs, at every batch size (timed after :func:`keep_freed_memory`)."""
        return [
            (
                f"generate_batch{batch}",
                self._batched(batch, mode="inference", use_precision=self.precision, model=self.sampling_generator),
                batch,
                self.precision,
            )
            for batch in self.settings["batch_sizes"]
        ]

    def time(self, plan: list[tuple[str, Callable[[], object], int, str]], memory: Any) -> None:
        for name, call, volumes, dtype in plan:
            self.paths[name] = {**time_path(call, volumes, self.settings["repeats"], memory), "precision": dtype}

    def result(self) -> dict[str, Any]:
        """Ratios against the eager fp32 loop of the same run, GFLOP/s of the FLOPs each path executes."""
        paths = self.paths
        baseline = paths["eager_fp32"]["volumes_per_second"]
        flops_per_volume = generator_flops(self.direct_generator, 1)
        coarse_flops_per_volume = generator_flops(self.generator, 1)
        direct_paths = ("eager_fp32", "inference_mode_fp32_batch1", "bf16_batch1")  # the rest: coarse-grid form
        for name, path in paths.items():
            path["speedup_vs_eager_fp32"] = path["volumes_per_second"] / baseline
            executed = flops_per_volume if name in direct_paths else coarse_flops_per_volume
            path["gflops_per_second"] = path["volumes_per_second"] * executed / 1e9
        generate = [name for name in paths if name.startswith("generate_") and not name.endswith("_allocator")]
        best = max(generate, key=lambda n: paths[n]["volumes_per_second"])
        return {
            "grid": [self.grid] * 3,
            "generator_channels": self.settings["channels"],
            "gflop_per_volume": flops_per_volume / 1e9,
            "gflop_per_volume_coarse_grid": coarse_flops_per_volume / 1e9,
            "paths": paths,
            "best_generate_path": best,
            "speedup_best_generate_vs_eager_fp32": paths[best]["speedup_vs_eager_fp32"],
        }


def measure(smoke: bool) -> dict[str, Any]:
    """The whole benchmark (see the module docstring)."""
    settings = SMOKE if smoke else FULL
    memory = sibling("translate_memory")
    precision = resolve_inference_precision("auto", torch.device("cpu"))
    peaks = {"fp32": matmul_peak_gflops(torch.float32), "bf16": matmul_peak_gflops(torch.bfloat16)}
    benches = {f"{grid}^3": GridBench(grid, settings, precision) for grid in settings["grids"]}
    for bench in benches.values():  # every reference path first: the allocator setting is one-way
        bench.time(bench.reference_plan(), memory)
    allocator = keep_freed_memory()
    for bench in benches.values():
        bench.time(bench.generate_plan(), memory)
    grids = {name: bench.result() for name, bench in benches.items()}
    for result in grids.values():
        for path in result["paths"].values():
            path["fraction_of_matmul_peak"] = path["gflops_per_second"] / peaks[path["precision"]]
    return {
        "benchmark": "generation",
        "smoke": smoke,
        "generate_precision": precision,
        "matmul_peak_gflops": peaks,
        "cpu_features": dict(cpu_features()),
        "generate_allocator": allocator,
        "bf16_paths": "timed" if native_bf16() else "skipped: no native bf16 on this CPU (no AMX / AVX-512 BF16)",
        "grids": grids,
        "targets": {
            name: {
                "value": result["speedup_best_generate_vs_eager_fp32"],
                "target": TARGET_SPEEDUP,
                "comparison": ">=",
                "met": result["speedup_best_generate_vs_eager_fp32"] >= TARGET_SPEEDUP,
            }
            for name, result in grids.items()
        },
        "environment": environment(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="16^3 grid, tiny network, seconds")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results JSON ({RESULTS})")
    parser.add_argument("--part", choices=("all", "throughput", "quality"), default="all", help="what to measure")
    parser.add_argument("--quality-steps", type=int, default=None, help="cgan3d steps per quality cell (600)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    quality = sibling("generation_quality")
    if args.part in ("all", "throughput"):
        previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
        result = measure(args.smoke)
        if "quality" in previous and args.part == "throughput":
            result["quality"] = previous["quality"]
        result = write_results(args.out, result)
        print(json.dumps({"targets": result["targets"], "generate_precision": result["generate_precision"]}, indent=2))
    if args.part in ("all", "quality"):
        steps = ["--steps", str(args.quality_steps)] if args.quality_steps else []
        quality.main([*(["--smoke"] if args.smoke else []), *steps, "--out", str(args.out)])
    return json.loads(args.out.read_text())


if __name__ == "__main__":
    main()
