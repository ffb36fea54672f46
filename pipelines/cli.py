"""The `medgan` command line: thin. It parses arguments, then calls one job in `pipelines`.

Every user-caused error is a `medgan.errors.MedganError`; it is printed as one
clear message (no traceback unless `--debug`) and the process exits with 1.
Jobs are imported inside each command so `medgan --help` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

import click
from rich.console import Console

from medgan import __version__
from medgan.allocator import keep_freed_memory
from medgan.errors import medgan_error_in

_stderr = Console(stderr=True)
_cli_state = {"debug": False}


def quiet_optional_backends() -> None:
    """Silence MONAI's notice that the optional GPU DICOM decoder (nvImageCodec) is absent: it is
    expected on CPU machines, and medgan reads DICOM with pydicom's own decoders."""
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*nvImageCodec.*")


def parse_shape(text: str) -> tuple[int, int, int]:
    """Accept `64` (a cube) or `64,64,48` / `64x64x48`."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a shape; write 64 or 64,64,48") from None
    if len(numbers) == 1:
        numbers *= 3
    if len(numbers) != 3:
        raise click.BadParameter(f"{text!r} must have 1 or 3 numbers")
    return numbers[0], numbers[1], numbers[2]


def run_option(help_text: str):
    """``--run RUN_DIR``: a trained run folder (translate, generate)."""
    return click.option(
        "--run", "run_dir", required=True, type=click.Path(path_type=Path, file_okay=False), help=help_text
    )


def out_option(help_text: str):
    """``--out DIR``: the job's output folder."""
    return click.option(
        "--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False), help=help_text
    )


def format_option(help_text: str):
    """``--format nifti|dicom``."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["nifti", "dicom"]),
        default="nifti",
        show_default=True,
        help=help_text,
    )


def finish_job(line: str, summary) -> None:  # noqa: ANN001 (a medgan.jobs.JobSummary; imported lazily)
    """Print a batch job's count line and its failed items, and exit 1 when any failed."""
    click.echo(line)
    for failure in summary.failures:
        click.echo(f"  failed: {failure.key}: {failure.error}", err=True)
    if summary.exit_code:
        sys.exit(summary.exit_code)


device_option = click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
quiet_option = click.option("--quiet", is_flag=True, help="No progress bar.")


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Run `medgan COMMAND --help` for each command's options and an example.",
)
@click.version_option(__version__, "--version", prog_name="medgan", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logs.")
def cli(debug: bool) -> None:
    """medgan: 3D GANs that turn CT and MRI volumes into better training data.

    \b
    A typical session:
      medgan sample-data data/            write a phantom MRI/CT head dataset
      medgan info data/subject_000/ct.nii.gz
                                          check geometry and intensities of scans
    """
    _cli_state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    quiet_optional_backends()
    logging.getLogger("medgan.allocator").debug(keep_freed_memory())


@cli.command("sample-data")
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--subjects", default=24, show_default=True, help="Number of subjects (heads).")
@click.option("--shape", default="64", show_default=True, help="Volume shape: one number (cube) or X,Y,Z.")
@click.option("--lesion-fraction", default=0.5, show_default=True, help="Fraction of subjects with a lesion (0..1).")
@click.option("--seed", default=0, show_default=True, help="Seed; the same seed gives byte-identical files.")
@click.option(
    "--lesions",
    "lesion_mix",
    type=click.Choice(["default", "conspicuous", "haemorrhage"]),
    default="default",
    show_default=True,
    help="Lesion mix: default (a third subtle: a detection task that is not trivial), conspicuous "
    "(large, full-contrast lesions of every type) or haemorrhage (large bright haemorrhages only: a "
    "class a small classifier learns from a few dozen heads).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sample_data_command(
    out_dir: Path, subjects: int, shape: str, lesion_fraction: float, seed: int, lesion_mix: str, quiet: bool
) -> None:
    """Write a deterministic digital head phantom dataset to OUT_DIR.

    Per subject: a T1-weighted MRI, a CT in Hounsfield units, a tissue label map and,
    for lesion subjects, a lesion mask and class label (NIfTI); plus a MONAI
    datalist JSON with a fixed train/validation/test split and a montage PNG.

    \b
    Example:
      medgan sample-data data/phantom --subjects 24 --shape 64 --lesion-fraction 0.5 --seed 0
    """
    from pipelines.sample_data import make_sample_data

    summary = make_sample_data(
        out_dir,
        subjects=subjects,
        shape=parse_shape(shape),
        lesion_fraction=lesion_fraction,
        seed=seed,
        lesion_mix=lesion_mix,
        progress=not quiet,
    )
    click.echo(str(summary))


@cli.command("info")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input instead of a table.")
@click.option(
    "--run",
    "run_dir",
    default=None,
    type=click.Path(path_type=Path, file_okay=False),
    help="Also say what `medgan translate --run RUN` would do with each input (resampling, refusal, warnings).",
)
def info_command(paths: tuple[Path, ...], as_json: bool, run_dir: Path | None) -> None:
    """Show geometry, spacing, orientation, intensity range, modality and problems of each input.

    PATHS are NIfTI files (.nii, .nii.gz) or DICOM series folders. With --run, each
    input is also checked as `medgan translate` would check it for that run: trained
    spacing vs the input's, and the input guard's verdict. Exits with code 1 if any
    input is invalid or would be refused.

    \b
    Examples:
      medgan info sample_data/subject_000/ct.nii.gz path/to/dicom_series/
      medgan info --run runs/p2p studies/*/MR
    """
    from pipelines.info import run_info

    n_invalid = run_info(list(paths), as_json=as_json, run_dir=run_dir)
    if n_invalid:
        sys.exit(1)


@cli.command("train")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--run-dir", type=click.Path(path_type=Path, file_okay=False), help="Run folder (default runs/<config>-<time>)."
)
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir (or the newest run of CONFIG) exactly.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key; repeatable.")
@click.option("--dry-run", is_flag=True, help="Check config, data and networks; print the plan; train nothing.")
@click.option("--quiet", is_flag=True, help="Plain periodic log lines instead of a progress bar (batch jobs).")
def train_command(
    config: Path, run_dir: Path | None, resume: bool, overrides: tuple[str, ...], dry_run: bool, quiet: bool
) -> None:
    """Train a GAN (pix2pix, cyclegan, bulk_density...) from a YAML CONFIG.

    The run folder gets the resolved config.yaml, checkpoints/ (safetensors weights +
    optimizer/RNG state), metrics.jsonl, TensorBoard events and sample montages.
    Launch with `torchrun --nproc_per_node=N -m medgan train CONFIG` for
    DistributedDataParallel training.

    \b
    Examples:
      medgan train configs/pix2pix_mri2ct.yaml --run-dir runs/p2p --set train.steps=2000
      medgan train configs/pix2pix_mri2ct.yaml --run-dir runs/p2p --resume
      medgan train configs/cyclegan_mri2ct.yaml --dry-run
    """
    from pipelines.train import run_training

    finished = run_training(config, run_dir=run_dir, resume=resume, overrides=overrides, dry_run=dry_run, quiet=quiet)
    if not dry_run and os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 reports
        click.echo(f"run folder: {finished}")


@cli.command("translate")
@run_option("A trained run folder (from `medgan train`).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Output folder (outputs + manifest).")
@format_option("Write NIfTI files or de-identified DICOM series.")
@click.option("--shard", default=None, metavar="I/N", help="Process only shard I of N (0-based) of the inputs.")
@click.option("--split", default=None, help="With a datalist input: only this list (training/validation/test).")
@click.option("--overwrite", is_flag=True, help="Redo items already finished with this run.")
@device_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="inference.KEY=VALUE",
    help="Override an inference setting of the run (roi_size, overlap, sw_batch_size, context, precision, "
    "channels_last, air_outside_body, mode); repeatable.",
)
@click.option(
    "--nan-fill",
    type=float,
    default=None,
    metavar="VALUE",
    help="Replace NaN / Inf voxels (e.g. outside a registered scan's field of view) with VALUE, in the input's "
    "units (0: MRI background), instead of failing the item; the manifest entry says how many were replaced.",
)
@quiet_option
def translate_command(
    run_dir: Path,
    inputs: tuple[Path, ...],
    out_dir: Path,
    output_format: str,
    shard: str | None,
    split: str | None,
    overwrite: bool,
    device: str,
    overrides: tuple[str, ...],
    nan_fill: float | None,
    quiet: bool,
) -> None:
    """Translate INPUTS (e.g. MRI -> pseudo-CT in HU) with a trained run.

    INPUTS are NIfTI files, DICOM series folders, or a datalist JSON. Each input is
    resampled to the spacing the run was trained at and back: every output is on its
    input's exact grid (shape, affine, orientation). Inputs of another modality (a CT
    given to an MRI model) and blank images are refused; doubtful ones (small field of
    view, far-off spacing) are translated with warnings in the manifest. A manifest in
    --out records each item; re-running skips finished items and resumes a killed job.
    Exits 1 if any item failed (the others are still written), 2 for a --set key
    outside inference.

    \b
    Examples:
      medgan translate --run runs/p2p sample_data/datalist.json --split test --out pseudo_ct/
      medgan translate --run runs/p2p studies/*/MR --out pct/ --format dicom --shard 0/4
      medgan translate --run runs/p2p scan.nii.gz --out pct/ --set inference.roi_size=[64,64,64]
      medgan translate --run runs/p2p registered_t1.nii.gz --out pct/ --nan-fill 0
    """
    from medgan.errors import ConfigError
    from pipelines.translate import check_inference_overrides, run_translate

    try:
        check_inference_overrides(overrides)
    except ConfigError as err:  # a usage error: the option does not take that key
        raise click.BadParameter(str(err), param_hint="'--set'") from None
    summary = run_translate(
        run_dir,
        list(inputs),
        out_dir,
        output_format=output_format,
        shard=shard,
        overwrite=overwrite,
        device=device,
        progress=not quiet,
        split=split,
        overrides=overrides,
        nan_fill=nan_fill,
    )
    n_warned = sum(1 for record in summary.records if record.warnings)
    click.echo(
        f"{summary.n_done} translated, {summary.n_skipped} already done, {summary.n_failed} failed; "
        f"manifest: {summary.manifest_path}" + (f"; {n_warned} with warnings (see the manifest)" if n_warned else "")
    )
    for failure in summary.failures:
        click.echo(f"  failed: {failure.input}: {failure.error}", err=True)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@cli.command("generate")
@run_option("A trained class-conditional run folder (method cgan3d).")
@click.option("--n", "n", type=int, default=None, help="Number of samples (default: one per line of --labels-from).")
@out_option("Output folder (samples, sidecars, manifest, datalist.json, montage.png).")
@click.option("--label", type=int, default=None, help="Class label of every sample (default: cycle over classes).")
@click.option(
    "--labels-from",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File with one class label per sample (one per line, or a JSON list).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Job seed; item i's noise is seeded by (seed, i).")
@format_option("NIfTI files or de-identified DICOM series marked derived and synthetic.")
@click.option("--shard", default=None, metavar="I/N", help="Generate only shard I of N (0-based) of the samples.")
@click.option("--batch-size", type=int, default=4, show_default=True, help="Samples drawn per generator call.")
@click.option(
    "--truncation",
    type=float,
    default=None,
    metavar="PSI",
    help="Truncation trick: redraw noise entries beyond +-PSI (fewer outliers, less diversity).",
)
@click.option("--overwrite", is_flag=True, help="Redo samples already written with this run and settings.")
@device_option
@quiet_option
def generate_command(
    run_dir: Path,
    n: int | None,
    out_dir: Path,
    label: int | None,
    labels_from: Path | None,
    seed: int,
    output_format: str,
    shard: str | None,
    batch_size: int,
    truncation: float | None,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Generate N synthetic volumes with a trained class-conditional run.

    Each sample is a folder with one image per generated channel (CT in HU; MRI in a
    normalised 0-1000 scale) at the run's trained spacing, and sample.json (seed,
    label, run, checkpoint and config hashes, medgan version). Sample i's noise comes
    from (--seed, i), so shards, resumed jobs and other batch sizes write the same
    samples. OUT/datalist.json lists the finished samples with their labels;
    OUT/montage.png shows the first sample of each class. Exits 1 if any sample failed.

    \b
    Examples:
      medgan generate --run runs/cgan3d --n 100 --out synthetic/
      medgan generate --run runs/cgan3d --n 50 --label 1 --out lesions/ --format dicom
      medgan generate --run runs/cgan3d --labels-from labels.txt --out synth/ --shard 0/4
    """
    from pipelines.generate import count_line, run_generate

    summary = run_generate(
        run_dir,
        out_dir,
        n,
        label=label,
        labels_from=labels_from,
        seed=seed,
        output_format=output_format,
        shard=shard,
        batch_size=batch_size,
        truncation=truncation,
        overwrite=overwrite,
        progress=not quiet,
        device=device,
    )
    finish_job(count_line(summary), summary)


@cli.command("enrich")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key; repeatable.")
@click.option("--shard", default=None, metavar="I/N", help="Make only shard I of N (0-based) of the cases.")
@click.option("--overwrite", is_flag=True, help="Redo cases already written with these models and settings.")
@quiet_option
def enrich_command(config: Path, overrides: tuple[str, ...], shard: str | None, overwrite: bool, quiet: bool) -> None:
    """Insert synthetic lesions, with exact masks, into the healthy cases of a datalist.

    Fits a lesion shape / placement model and an appearance model on the datalist's real
    lesion cases (saved in OUT/models/ with a fitted-vs-sampled report), then writes
    each new case (one image per datalist image key, lesion_mask.nii.gz, case.json) on
    its source's grid: voxels farther than 3 from a lesion are the source's, exactly.
    OUT/datalist.json holds the source lists plus the new cases, flagged synthetic with
    their source_subject. Case i's lesions come from (seed, i): shards and resumed jobs
    write the same cases. Exits 1 if any case failed.

    \b
    Examples:
      medgan enrich configs/enrich.yaml
      medgan enrich configs/enrich.yaml --set cases_per_source=4 --set out=enriched4/
      medgan enrich configs/enrich.yaml --shard 0/2
    """
    from medgan.config.enrich import EnrichConfig
    from medgan.config.loader import load_config
    from pipelines.enrich import count_line, run_enrich

    settings = load_config(config, EnrichConfig, overrides)
    summary = run_enrich(settings, shard=shard, overwrite=overwrite, progress=not quiet)
    finish_job(count_line(summary), summary)


@cli.command("downstream")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key; repeatable.")
@click.option("--quick", is_flag=True, help="Smoke version: one cell (8 real cases), two seeds, a few steps.")
@click.option("--overwrite", is_flag=True, help="Redo runs already finished with this data and settings.")
@quiet_option
def downstream_command(config: Path, overrides: tuple[str, ...], quick: bool, overwrite: bool, quiet: bool) -> None:
    """Does the synthetic data make a lesion classifier / detector better, by how much, how sure?

    Trains a classifier (and / or a detector) on the same real cases under five
    conditions: real only, + strong classical augmentation, + synthetic cases,
    + both, and a negative control (+ the same number of "lesion" cases with no
    lesion in them), over a grid of real-case counts and synthetic:real ratios,
    several seeds each; scores every run on the held-out real test cases. Writes
    OUT/downstream.json (every run; 95 % intervals over test cases and seeds; paired
    differences with p-values; one verdict per regime) and OUT/plots/. Resumable:
    a rerun trains only the runs still missing. Exits 1 if any run failed.

    \b
    Examples:
      medgan downstream configs/downstream.yaml --set synthetic_datalist=enriched/datalist.json
      medgan downstream configs/downstream.yaml --quick --set out=downstream_smoke/
      medgan downstream configs/downstream.yaml --set "tasks=[classify, detect]" --set repeats=3
    """
    from medgan.config.downstream import DownstreamConfig
    from medgan.config.loader import load_config
    from pipelines.downstream import count_line, run_downstream

    settings = load_config(config, DownstreamConfig, overrides)
    result = run_downstream(settings, quick=quick, overwrite=overwrite, progress=not quiet)
    finish_job(count_line(result), result.summary)


@cli.command("report")
@click.option(
    "--real",
    type=click.Path(path_type=Path),
    default=None,
    help="Real scans: a datalist JSON (its validation + test lists) or a folder of NIfTI / DICOM series.",
)
@click.option(
    "--synthetic",
    type=click.Path(path_type=Path),
    default=None,
    help="Synthetic scans: a generate / enrich output folder, its datalist.json, or a folder of NIfTI.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder: report.html, report.json, figures/.",
)
@click.option(
    "--training",
    type=click.Path(path_type=Path),
    default=None,
    help="The generator's training datalist, for memorisation (default: --real's training list).",
)
@click.option(
    "--translation",
    type=click.Path(path_type=Path),
    default=None,
    help="A translate job's output folder: its evaluation.json joins the report.",
)
@click.option(
    "--downstream",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A downstream study's downstream.json: its table, verdicts and plots join the report.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="YAML with any report key (configs/report.yaml documents them); options above win.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key, e.g. thresholds.two_sample_auc.warn=0.75 or image_key=mri; repeatable.",
)
@quiet_option
def report_command(
    real: Path | None,
    synthetic: Path | None,
    out_dir: Path | None,
    training: Path | None,
    translation: Path | None,
    downstream: Path | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Check synthetic scans against real ones before anyone trains on them.

    Writes OUT/report.html (one self-contained page: verdicts, values, thresholds,
    plots, slice montages) and OUT/report.json. Checks, each pass / warn / fail:
    realism (radiomics Fréchet distance and MMD, a real-vs-synthetic classifier's
    held-out AUC), intensity (per-tissue histograms, impossible HU), diversity
    (pairwise MS-SSIM, near-duplicates), memorisation (synthetic samples closer
    to a training case than any held-out real scan), artifacts (NaN, grid
    patterns, content in the air, lesion seams, lesion-like blobs outside the
    mask). Exits 0 when the report was written, whatever its verdicts.

    \b
    Examples:
      medgan report --real sample_data/datalist.json --synthetic generated/ --out report/
      medgan report --real sample_data/datalist.json --synthetic enriched/ --out report/ \\
          --downstream downstream_out/downstream.json --set image_key=mri
    """
    from medgan.config.loader import apply_overrides, load_config, validate_config
    from medgan.config.report import ReportConfig
    from pipelines.report import run_report

    given = {
        "real": real,
        "synthetic": synthetic,
        "out": out_dir,
        "training": training,
        "translation": translation,
        "downstream": downstream,
    }
    flags = [f"{key}={value}" for key, value in given.items() if value is not None]
    if config_path is not None:
        settings = load_config(config_path, ReportConfig, [*overrides, *flags])
    else:
        settings = validate_config(apply_overrides({}, [*overrides, *flags]), ReportConfig)
    result = run_report(settings, progress=not quiet)
    click.echo(str(result))


@cli.command("reconstruct")
@run_option("A trained recon run folder (from `medgan train configs/recon_4x.yaml`).")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Output folder (one folder per input + manifest).")
@click.option("--acceleration", type=float, default=None, help="Undersampling factor (default: the run's).")
@click.option(
    "--mask", "mask_kind", type=click.Choice(["random", "equispaced"]), default=None, help="Line mask (the run's)."
)
@click.option("--center-fraction", type=float, default=None, help="Fully sampled centre fraction (the run's).")
@click.option(
    "--phase-amplitude",
    type=float,
    default=None,
    help="Smooth random phase (radians) given to image inputs' simulated k-space (the run's; 0 = real-valued).",
)
@click.option("--seed", default=0, show_default=True, help="Input i's mask comes from (seed, i).")
@click.option("--shard", default=None, metavar="I/N", help="Process only shard I of N (0-based) of the inputs.")
@click.option("--overwrite", is_flag=True, help="Redo inputs already finished with this run and settings.")
@device_option
@quiet_option
def reconstruct_command(
    run_dir: Path,
    inputs: tuple[Path, ...],
    out_dir: Path,
    acceleration: float | None,
    mask_kind: str | None,
    center_fraction: float | None,
    phase_amplitude: float | None,
    seed: int,
    shard: str | None,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Undersample fully sampled MRIs and reconstruct them with a trained recon run.

    Per input, OUT/<name>/ holds zero_filled.nii.gz and reconstruction.nii.gz on the
    input's grid, and recon.json: the mask's achieved acceleration, fastMRI's per-volume
    NMSE / PSNR / SSIM of both against the input, and the hallucination report.
    fastMRI single-coil HDF5 files (.h5) need a slice-wise run (unrolled2d): they are
    undersampled here when fully sampled, used as measured when they carry a mask, scored
    against reconstruction_esc when present, and written as zero_filled.h5 /
    reconstruction.h5. Exits 1 if any input failed.

    \b
    Examples:
      medgan reconstruct --run runs/recon4x sample_data/subject_003/mri.nii.gz --out recon/
      medgan reconstruct --run runs/recon4x scans/*.nii.gz --out recon8x/ --acceleration 8 --center-fraction 0.04
      medgan reconstruct --run runs/recon2d singlecoil_val/*.h5 --out recon_fastmri/
    """
    from pipelines.reconstruct import count_line, run_reconstruct

    summary = run_reconstruct(
        run_dir,
        inputs,
        out_dir,
        acceleration=acceleration,
        mask_kind=mask_kind,
        center_fraction=center_fraction,
        phase_amplitude=phase_amplitude,
        seed=seed,
        shard=shard,
        overwrite=overwrite,
        progress=not quiet,
        device=device,
    )
    finish_job(count_line(summary), summary)


@cli.command("evaluate-translation")
@click.argument("translated_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--datalist",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The datalist whose reference scans the translations are scored against.",
)
@click.option("--split", default="test", show_default=True, help="Datalist list to score.")
@click.option("--source-key", default="mri", show_default=True, help="Datalist key of the translated inputs.")
@click.option("--target-key", default="ct", show_default=True, help="Datalist key of the reference scans.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Report JSON path (default TRANSLATED_DIR/evaluation.json; a montage PNG goes beside it).",
)
def evaluate_translation_command(
    translated_dir: Path, datalist: Path, split: str, source_key: str, target_key: str, report_path: Path | None
) -> None:
    """Score the outputs of a `medgan translate` job against reference scans.

    Reports SynthRAD-style metrics inside the body (MAE in HU, PSNR, SSIM, MAE per
    tissue, bone Dice) per subject and as mean with a 95% bootstrap CI, in a JSON
    report with a montage PNG (MRI, CT, pseudo-CT, |error|) beside it.

    \b
    Example:
      medgan evaluate-translation pseudo_ct/ --datalist sample_data/datalist.json --split test
    """
    from pipelines.evaluate_translation import evaluate_translation

    report = evaluate_translation(
        translated_dir, datalist, split=split, source_key=source_key, target_key=target_key, report_path=report_path
    )
    click.echo(report.headline())
    click.echo(f"report: {report.report_path}\nmontage: {report.montage_path}")


@cli.command("demo")
@click.option(
    "--out",
    "out_dir",
    default="demo_out",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for every run, job output and the report.",
)
@click.option("--quick", is_flag=True, help="A ~2-minute version: short trainings, the bundled data, a tiny study.")
@click.option("--quiet", is_flag=True, help="Plain log lines instead of progress bars.")
def demo_command(out_dir: Path, quick: bool, quiet: bool) -> None:
    """The whole product on the bundled sample data, as seven resumable jobs (~12 min on 2 CPU cores).

    1 pix2pix MRI -> CT: train, translate the test MRIs to pseudo-CT (HU), score them;
    2 a larger phantom for the lesion study; 3 enrich: synthetic lesions with exact masks
    in healthy heads; 4 train the class-conditional 3D GAN; 5 generate CT samples;
    6 downstream: a lesion classifier with and without the enriched cases, on held-out
    real heads; 7 report: the generated samples checked against real scans, with the
    translation and downstream results. Prints where everything is, the report first,
    and three headline numbers. Re-running reuses whatever is finished.

    \b
    Examples:
      medgan demo --out demo_out
      medgan demo --quick --out demo_quick
    """
    from pipelines.demo import run_demo

    click.echo(str(run_demo(out_dir, quick=quick, quiet=quiet)))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning medgan errors into one clear message."""
    try:
        cli.main(args=argv, prog_name="medgan", standalone_mode=False)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _stderr.print("interrupted; finished items are kept, re-run the same command to resume")
        sys.exit(130)
    except Exception as err:
        # A medgan error, possibly wrapped by MONAI in a RuntimeError, is the user's to fix:
        # show its message only. Anything else is a bug: let the traceback through.
        medgan_error = medgan_error_in(err)
        if medgan_error is None:
            raise
        if _cli_state["debug"]:
            traceback.print_exc()
        _stderr.print(f"[bold red]error:[/] {medgan_error}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    sys.exit(0)
