"""`medgan demo` (the README's main job): the whole product on the bundled sample data.

Seven stages, each a medgan job run as a user would run it, each resumable (a finished run is
reused, an interrupted one resumed, finished job items skipped), so re-running the demo is cheap:

1. **translate**: train pix2pix (MRI -> CT) on ``sample_data/``, translate the test MRIs into
   pseudo-CT (HU) on their own grids, and score them against the CT;
2. **study data**: a larger phantom (``OUT/study_data``, 80 heads) for the lesion study, since
   24 bundled heads leave 4 test cases (``--quick`` uses the bundled set);
3. **enrich**: fit the lesion shape and appearance models on the study's real lesions and insert
   synthetic lesions with exact masks into its healthy training heads;
4. **sampler**: train the class-conditional 3D GAN (``cgan3d``) on the bundled heads;
5. **generate**: draw CT samples of both classes from it;
6. **downstream**: train a lesion classifier with and without the enriched cases (and the
   negative control) on the study data, paired over seeds, scored on held-out real heads;
7. **report**: check the generated samples against real scans (realism, intensity, diversity,
   memorisation, artifacts) with the translation and downstream results in one page.

The demo is sized for a 2-core CPU (about 12 minutes; ``--quick`` about 2): short trainings and a
one-cell downstream grid, so its numbers show the machinery, not what longer runs reach (the
benchmarks in ``benchmarks/`` do that). :class:`DemoPlan` holds every size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medgan.config.downstream import DownstreamConfig
from medgan.config.enrich import EnrichConfig
from medgan.config.loader import apply_overrides, load_config, validate_config
from medgan.config.report import ReportConfig
from medgan.errors import ConfigError, TrainingError
from medgan.jobs import JobSummary
from medgan.training.run_layout import RunLayout
from pipelines.downstream import DownstreamResult, run_downstream
from pipelines.enrich import run_enrich
from pipelines.evaluate_translation import TranslationReport, evaluate_translation
from pipelines.generate import run_generate
from pipelines.report import ReportResult, run_report
from pipelines.sample_data import make_sample_data
from pipelines.train import run_training
from pipelines.translate import run_translate

LOG = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"
BUNDLED_DATALIST = REPO_ROOT / "sample_data" / "datalist.json"
# The bundled set's exact command (sample_data/README.md): regenerated when the repo copy is absent.
BUNDLED_SAMPLE_ARGS = {"subjects": 24, "shape": (48, 48, 48), "lesion_fraction": 0.5, "seed": 0}
STAGES = 7


@dataclass(frozen=True)
class DemoPlan:
    """How big each stage is. ``None`` steps keep the config's own."""

    translator_steps: int | None = None
    translator_overrides: tuple[str, ...] = ()
    sampler_steps: int | None = 300
    sampler_overrides: tuple[str, ...] = ()
    n_generated: int = 16
    study_subjects: int | None = 80  # None: the lesion study runs on the bundled set
    study_shape: tuple[int, int, int] = (48, 48, 48)
    enrich_overrides: tuple[str, ...] = ()
    downstream_overrides: tuple[str, ...] = (
        "n_real=[16]",
        "ratios=[1.0]",
        "reference_n_real=16",
        "reference_ratio=1.0",
        "repeats=2",
        "classifier.steps=150",
        "n_boot=500",
    )
    downstream_quick: bool = False
    report_overrides: tuple[str, ...] = ()


FULL_PLAN = DemoPlan()
QUICK_PLAN = DemoPlan(
    translator_steps=150,
    sampler_steps=30,
    n_generated=8,
    study_subjects=None,
    downstream_overrides=(),
    downstream_quick=True,
    report_overrides=("two_sample_steps=40", "two_sample_edge=24", "in_domain_steps=60"),
)


@dataclass
class DemoResult:
    """Where the demo put everything, and its three headline numbers."""

    out_dir: Path
    translator_run: Path
    translation: TranslationReport
    enriched: Path
    sampler_run: Path
    generated: Path
    downstream: DownstreamResult
    report: ReportResult

    def headline(self) -> list[str]:
        mae = self.translation.summary.get("mae_hu", {})
        mae_line = (
            f"pseudo-CT MAE:       {mae['mean']:.1f} HU inside the head "
            f"(95 % CI {mae['ci_low']:.1f}-{mae['ci_high']:.1f}, "
            f"n={mae['n']})"
            if mae.get("n")
            else "pseudo-CT MAE:       not measured"
        )
        verdict = self.downstream.verdicts[0] if self.downstream.verdicts else "no finished comparison"
        realism = self.report.verdicts.get("realism", "skipped")
        auc = next((c for c in self.report.checks if c.check_id == "realism.two_sample_auc"), None)
        auc_text = f" (real-vs-synthetic classifier AUC {auc.value:.2f})" if auc and auc.value is not None else ""
        return [mae_line, f"downstream verdict:  {verdict}", f"realism verdict:     {realism}{auc_text}"]

    def __str__(self) -> str:
        return "\n".join(
            [
                f"report (open this): {self.report.report_html}",
                f"translator run:     {self.translator_run}",
                f"pseudo-CTs (HU):    {self.translation.report_path.parent}",
                f"enriched cases:     {self.enriched}",
                f"sampler run:        {self.sampler_run}",
                f"generated samples:  {self.generated}",
                f"downstream study:   {self.downstream.result_path}",
                "",
                *self.headline(),
            ]
        )


_STARTED = [0.0]


def _stage(number: int, text: str) -> None:
    if number == 1:
        _STARTED[0] = time.monotonic()
    minutes, seconds = divmod(int(time.monotonic() - _STARTED[0]), 60)
    LOG.info("demo [%d/%d] %s (%d min %02d s so far)", number, STAGES, text, minutes, seconds)


def _bundled_datalist(out_dir: Path, progress: bool) -> Path:
    """The bundled sample datalist, or the same set regenerated under ``out_dir`` if the repo copy is absent."""
    if BUNDLED_DATALIST.is_file():
        return BUNDLED_DATALIST
    generated = out_dir / "sample_data"
    if not (generated / "datalist.json").is_file():
        LOG.info("bundled sample_data/ not found; generating it into %s", generated)
        make_sample_data(generated, progress=progress, **BUNDLED_SAMPLE_ARGS)
    return generated / "datalist.json"


def _config(name: str) -> Path:
    path = CONFIGS / name
    if not path.is_file():
        raise ConfigError("a demo config is missing", path=path, fix="run the demo from a medgan checkout")
    return path


def _train(config: str, run_dir: Path, overrides: Sequence[str], quiet: bool) -> Path:
    """Train (or resume, or reuse) one of the demo's runs."""
    resume = RunLayout(run_dir).has_checkpoints()
    return run_training(_config(config), run_dir=run_dir, resume=resume, overrides=overrides, quiet=quiet)


def _steps(steps: int | None) -> list[str]:
    return [] if steps is None else [f"train.steps={steps}"]


def _require_done(summary: JobSummary, what: str, where: Path) -> None:
    if summary.exit_code:
        failures = "; ".join(f"{failure.input}: {failure.error}" for failure in summary.failures[:3])
        raise TrainingError(
            f"{what} failed for some items: {failures}", path=where, fix="see the log above; re-run the demo to retry"
        )


def _translate(out_dir: Path, datalist: Path, plan: DemoPlan, quiet: bool) -> tuple[Path, TranslationReport]:
    _stage(1, "pix2pix MRI -> CT: train, translate the test MRIs, score them")
    overrides = [f"data.datalist={datalist}", *_steps(plan.translator_steps), *plan.translator_overrides]
    run_dir = _train("pix2pix_mri2ct.yaml", out_dir / "translator", overrides, quiet)
    pseudo_ct_dir = out_dir / "pseudo_ct"
    _require_done(
        run_translate(run_dir, [datalist], pseudo_ct_dir, split="test", progress=not quiet),
        "translation",
        pseudo_ct_dir,
    )
    return run_dir, evaluate_translation(pseudo_ct_dir, datalist, split="test")


def _study_data(out_dir: Path, bundled: Path, plan: DemoPlan, quiet: bool) -> Path:
    _stage(2, "lesion study data" + ("" if plan.study_subjects is None else f": a {plan.study_subjects}-head phantom"))
    if plan.study_subjects is None:
        return bundled
    folder = out_dir / "study_data"
    if not (folder / "datalist.json").is_file():
        make_sample_data(
            folder,
            subjects=plan.study_subjects,
            shape=plan.study_shape,
            lesion_fraction=0.5,
            seed=1,
            progress=not quiet,
        )
    return folder / "datalist.json"


def _enrich(out_dir: Path, study: Path, plan: DemoPlan, quiet: bool) -> Path:
    _stage(3, "enrich: fit the lesion models, insert synthetic lesions into the healthy training heads")
    overrides = [f"datalist={study}", f"out={out_dir / 'enriched'}", *plan.enrich_overrides]
    config = load_config(_config("enrich.yaml"), EnrichConfig, overrides)
    _require_done(run_enrich(config, progress=not quiet), "enrich", config.out)
    return config.out


def _sample(out_dir: Path, bundled: Path, plan: DemoPlan, quiet: bool) -> tuple[Path, Path]:
    _stage(4, "cgan3d: train the class-conditional 3D GAN on the bundled CTs")
    overrides = [f"data.datalist={bundled}", *_steps(plan.sampler_steps), *plan.sampler_overrides]
    run_dir = _train("cgan3d.yaml", out_dir / "sampler", overrides, quiet)
    _stage(5, f"generate: {plan.n_generated} CT samples of both classes")
    generated = out_dir / "generated"
    _require_done(run_generate(run_dir, generated, plan.n_generated, seed=0, progress=not quiet), "generate", generated)
    return run_dir, generated


def _downstream(out_dir: Path, study: Path, enriched: Path, plan: DemoPlan, quiet: bool) -> DownstreamResult:
    _stage(6, "downstream: a lesion classifier with / without the enriched cases, on held-out real heads")
    overrides = [
        f"datalist={study}",
        f"synthetic_datalist={enriched / 'datalist.json'}",
        f"out={out_dir / 'downstream'}",
        *plan.downstream_overrides,
    ]
    config = load_config(_config("downstream.yaml"), DownstreamConfig, overrides)
    result = run_downstream(config, quick=plan.downstream_quick, progress=not quiet)
    _require_done(result.summary, "the downstream study", config.out)
    return result


def _report(
    out_dir: Path, bundled: Path, generated: Path, plan: DemoPlan, translation: Path, study_result: Path
) -> ReportResult:
    _stage(7, "report: generated samples vs real scans, with the translation and downstream results")
    raw: dict[str, Any] = {
        "real": str(bundled),
        "synthetic": str(generated),
        "out": str(out_dir / "report"),
        "translation": str(translation),
        "downstream": str(study_result),
    }
    config = validate_config(apply_overrides(raw, plan.report_overrides), ReportConfig)
    return run_report(config, progress=False)


def run_demo(
    out_dir: str | Path = "demo_out",
    *,
    quick: bool = False,
    quiet: bool = False,
    plan: DemoPlan | None = None,
    datalist: str | Path | None = None,
) -> DemoResult:
    """Run the seven stages (see the module docstring) under ``out_dir``.

    ``plan`` overrides the sizes (``quick`` picks :data:`QUICK_PLAN`); ``datalist`` swaps in other
    translation / sampler data than the bundled set (e.g. a tiny one for tests).
    """
    out_dir = Path(out_dir)
    plan = plan or (QUICK_PLAN if quick else FULL_PLAN)
    bundled = Path(datalist) if datalist else _bundled_datalist(out_dir, progress=not quiet)
    translator_run, translation = _translate(out_dir, bundled, plan, quiet)
    study = _study_data(out_dir, bundled, plan, quiet)
    enriched = _enrich(out_dir, study, plan, quiet)
    sampler_run, generated = _sample(out_dir, bundled, plan, quiet)
    downstream = _downstream(out_dir, study, enriched, plan, quiet)
    report = _report(out_dir, bundled, generated, plan, translation.report_path.parent, downstream.result_path)
    return DemoResult(out_dir, translator_run, translation, enriched, sampler_run, generated, downstream, report)
