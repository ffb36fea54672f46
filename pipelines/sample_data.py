"""The `sample-data` job: write the deterministic digital head phantom dataset.

A short composition of :mod:`medgan.data.phantom`: validate the arguments, generate
and write every subject with a progress bar, and return a summary the CLI prints.
Same arguments -> byte-identical files (checked against ``sample_data/checksums.sha256``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from medgan.data.phantom import PhantomDatasetConfig, write_phantom_dataset


@dataclass(frozen=True)
class SampleDataSummary:
    """What `make_sample_data` wrote: where, how many subjects of each kind, size and time."""

    out_dir: Path
    datalist_path: Path
    montage_path: Path
    checksums_path: Path
    subjects: int
    lesion_subjects: int
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    split_sizes: dict[str, int]
    bytes_on_disk: int
    seconds: float

    def __str__(self) -> str:
        splits = ", ".join(f"{name} {count}" for name, count in self.split_sizes.items())
        spacing = " x ".join(f"{s:.3g}" for s in self.spacing_mm)
        return (
            f"wrote {self.subjects} subjects ({self.lesion_subjects} with a lesion) to {self.out_dir}\n"
            f"  shape {'x'.join(map(str, self.shape))}, spacing {spacing} mm; split: {splits}\n"
            f"  datalist {self.datalist_path}\n  montage  {self.montage_path}\n"
            f"  {self.bytes_on_disk / 1e6:.2f} MB in {self.seconds:.1f} s"
        )


def make_sample_data(
    out_dir: Path,
    *,
    subjects: int = 24,
    shape: tuple[int, int, int] = (64, 64, 64),
    spacing_mm: float | tuple[float, float, float] | None = None,
    lesion_fraction: float = 0.5,
    seed: int = 0,
    lesion_mix: str = "default",
    progress: bool = True,
) -> SampleDataSummary:
    """Write ``subjects`` phantom heads (MRI, CT, labels, lesion masks), a datalist and a montage.

    ``spacing_mm=None`` derives isotropic voxels from a 240 mm field of view (3.75 mm at
    64^3), so any shape holds a whole head; an explicit spacing must give a field of
    view of at least 200 mm. ``lesion_mix``: ``default`` (a third of the lesions subtle) or
    ``conspicuous`` (large, full-contrast lesions; see ``medgan.data.phantom.lesions.LESION_MIXES``).
    Bad arguments raise :class:`medgan.errors.ConfigError`.
    """
    config = PhantomDatasetConfig(
        subjects=subjects,
        shape=shape,
        spacing_mm=spacing_mm,
        lesion_fraction=lesion_fraction,
        seed=seed,
        lesion_mix=lesion_mix,
    )
    columns = (TextColumn("sample-data"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("subjects", total=config.subjects)
        result = write_phantom_dataset(Path(out_dir), config, on_subject_done=lambda _: bar.advance(task))
    return SampleDataSummary(
        out_dir=result.out_dir,
        datalist_path=result.datalist_path,
        montage_path=result.montage_path,
        checksums_path=result.checksums_path,
        subjects=config.subjects,
        lesion_subjects=result.lesion_subjects,
        shape=config.shape,
        spacing_mm=config.spacing_mm,  # type: ignore[arg-type]
        split_sizes=result.split_sizes,
        bytes_on_disk=result.bytes_on_disk,
        seconds=result.seconds,
    )
