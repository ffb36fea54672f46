"""`medgan demo` (the README's main job): train a small pix2pix on the bundled sample
data, translate the held-out test MRIs into pseudo-CT, and score them against the CT.

Every step is resumable: a finished training run is reused, an interrupted one is
resumed, and translation skips finished subjects, so re-running the demo is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medgan.errors import ConfigError
from medgan.training.run_layout import RunLayout
from pipelines.evaluate_translation import TranslationReport, evaluate_translation
from pipelines.sample_data import make_sample_data
from pipelines.train import run_training
from pipelines.translate import run_translate

LOG = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DATALIST = REPO_ROOT / "sample_data" / "datalist.json"
DEMO_CONFIG = REPO_ROOT / "configs" / "pix2pix_mri2ct.yaml"
# The bundled set's exact command (sample_data/README.md): regenerated when the repo copy is absent.
BUNDLED_SAMPLE_ARGS = {"subjects": 24, "shape": (48, 48, 48), "lesion_fraction": 0.5, "seed": 0}


@dataclass
class DemoResult:
    """Where the demo put its run, its pseudo-CTs and its evaluation."""

    run_dir: Path
    pseudo_ct_dir: Path
    report: TranslationReport

    def __str__(self) -> str:
        return "\n".join(
            [
                f"trained run:      {self.run_dir}",
                f"pseudo-CTs (HU):  {self.pseudo_ct_dir}",
                f"metrics (JSON):   {self.report.report_path}",
                f"montage (PNG):    {self.report.montage_path}",
                "test-set metrics (pseudo-CT vs CT, inside the head):",
                self.report.headline(),
            ]
        )


def _datalist(out_dir: Path, progress: bool) -> Path:
    """The bundled sample datalist, or the same set regenerated under ``out_dir`` if the repo copy is absent."""
    if BUNDLED_DATALIST.is_file():
        return BUNDLED_DATALIST
    generated = out_dir / "sample_data"
    if not (generated / "datalist.json").is_file():
        LOG.info("bundled sample_data/ not found; generating it into %s", generated)
        make_sample_data(generated, progress=progress, **BUNDLED_SAMPLE_ARGS)
    return generated / "datalist.json"


def _train(run_dir: Path, datalist: Path, steps: int | None, quiet: bool, extra_overrides: Sequence[str]) -> Path:
    """Train (or resume, or reuse) the demo's pix2pix run."""
    if not DEMO_CONFIG.is_file():
        raise ConfigError("the demo config is missing", path=DEMO_CONFIG, fix="run the demo from a medgan checkout")
    overrides = [f"data.datalist={datalist}", *extra_overrides]
    if steps is not None:
        overrides.append(f"train.steps={steps}")
    resume = RunLayout(run_dir).has_checkpoints()
    return run_training(DEMO_CONFIG, run_dir=run_dir, resume=resume, overrides=overrides, quiet=quiet)


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    steps: int | None = None,
    quiet: bool = False,
    datalist: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> DemoResult:
    """Train pix2pix on the bundled phantom heads, translate the test split, and evaluate it.

    ``datalist`` and ``overrides`` (``section.key=value``) swap in other data or
    settings, e.g. for a tiny test run; by default the bundled sample data is used.
    """
    out_dir = Path(out_dir)
    datalist = Path(datalist) if datalist else _datalist(out_dir, progress=not quiet)
    run_dir = _train(out_dir / "run", datalist, steps, quiet, overrides)
    pseudo_ct_dir = out_dir / "pseudo_ct"
    summary = run_translate(run_dir, [datalist], pseudo_ct_dir, split="test", progress=not quiet)
    if summary.exit_code:
        failures = "; ".join(f"{failure.input}: {failure.error}" for failure in summary.failures)
        raise ConfigError(f"translation failed for some test subjects: {failures}", path=pseudo_ct_dir)
    report = evaluate_translation(pseudo_ct_dir, datalist, split="test")
    return DemoResult(run_dir, pseudo_ct_dir, report)
