"""Run a batch job: skip finished items, do the rest, record every outcome.

The runner is generic: a job (translate, generate, reconstruct) supplies its
items and one function that writes one item's output atomically. The runner
handles sharding, the manifest, skipping what is already done (same input hash,
checkpoint hash and config hash, output still intact), redoing what a killed run
left unfinished, and carrying on past bad inputs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan.errors import MedganError
from medgan.io.hashing import sha256_path
from medgan.jobs.manifest import ManifestRecord, ManifestWriter, merge_manifests
from medgan.jobs.progress import ItemProgress
from medgan.jobs.sharding import ShardSpec, resolve_shard, select_shard

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobItem:
    """One unit of work: a stable ``key``, its input (if any) and the output path it must produce."""

    key: str
    input_path: Path | None
    output_path: Path
    payload: Any = None


@dataclass(frozen=True)
class JobFingerprint:
    """What, besides the input, determines an output: the model weights and the resolved config."""

    checkpoint_sha256: str | None
    config_sha256: str | None


@dataclass(frozen=True)
class JobFailure:
    """An item that failed, and why (the message a user needs to fix it)."""

    key: str
    input: str | None
    error: str


@dataclass
class JobSummary:
    """Counts and failures of one job run (or of all shards, from :func:`summarize_job`)."""

    n_done: int = 0
    n_skipped: int = 0
    n_failed: int = 0
    failures: list[JobFailure] = field(default_factory=list)
    records: list[ManifestRecord] = field(default_factory=list, repr=False)
    manifest_path: Path | None = None
    shard: str = "0/1"

    @property
    def n_total(self) -> int:
        """Items this run (or these shards) covered."""
        return self.n_done + self.n_skipped + self.n_failed

    @property
    def exit_code(self) -> int:
        """0 when every item is done or skipped, 1 when any failed (the CLI exits with it)."""
        return 1 if self.n_failed else 0

    def add(self, record: ManifestRecord) -> None:
        """Count one item's record."""
        self.records.append(record)
        if record.status == "done":
            self.n_done += 1
        elif record.status == "skipped":
            self.n_skipped += 1
        else:
            self.n_failed += 1
            self.failures.append(JobFailure(record.key, record.input, record.error or "unknown error"))


@dataclass(frozen=True)
class ItemResult:
    """What ``process(item)`` may return besides None: warnings (doubts) and notes (what was done)."""

    warnings: Sequence[str] = ()
    notes: Sequence[str] = ()


ItemProcessor = Callable[[JobItem], "ItemResult | Sequence[str] | None"]


def _item_result(returned: object) -> ItemResult:
    """``process``'s return value as an ItemResult: None -> empty, a string or strings -> warnings."""
    if returned is None:
        return ItemResult()
    if isinstance(returned, ItemResult):
        return ItemResult(tuple(map(str, returned.warnings)), tuple(map(str, returned.notes)))
    if isinstance(returned, str):
        return ItemResult((returned,))
    if isinstance(returned, Sequence):
        return ItemResult(tuple(str(warning) for warning in returned))
    raise TypeError(f"process(item) must return None, warning strings or an ItemResult, got {type(returned)}")


def _error_text(exc: BaseException) -> str:
    """A medgan error's own message; any other exception with its type so it can be searched for."""
    return str(exc) if isinstance(exc, MedganError) else f"{type(exc).__name__}: {exc}"


def _relative_output(output_path: Path, out_dir: Path) -> str:
    """The output path as recorded: relative to the job folder when inside it."""
    try:
        return output_path.relative_to(out_dir).as_posix()
    except ValueError:
        return str(output_path)


def remove_stale_temporaries(final_path: Path) -> None:
    """Delete leftovers of a killed atomic write of ``final_path`` (names from :mod:`medgan.io.atomic`).

    Safe under sharding because only the shard that owns an item writes its output.
    """
    suffix = "".join(final_path.suffixes)
    stem = final_path.name[: len(final_path.name) - len(suffix)] if suffix else final_path.name
    patterns = (f".{stem}.tmp-*{suffix}", f".{final_path.name}.staging-*", f".{final_path.name}.old-*")
    for pattern in patterns:
        for leftover in final_path.parent.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _is_finished(
    previous: ManifestRecord | None,
    item: JobItem,
    input_sha256: str | None,
    fingerprint: JobFingerprint,
    out_dir: Path,
) -> bool:
    """True when ``previous`` finished this very item with these weights and config, output intact."""
    if previous is None or previous.status not in ("done", "skipped"):
        return False
    if (previous.input_sha256, previous.checkpoint_sha256, previous.config_sha256) != (
        input_sha256,
        fingerprint.checkpoint_sha256,
        fingerprint.config_sha256,
    ):
        return False
    if previous.output != _relative_output(item.output_path, out_dir) or not item.output_path.exists():
        return False
    return sha256_path(item.output_path) == previous.output_sha256


def _check_items(items: Sequence[JobItem]) -> list[JobItem]:
    """Sort items by key and refuse duplicate keys or output paths (a bug in the calling job)."""
    keys = [item.key for item in items]
    outputs = [str(item.output_path) for item in items]
    if len(set(keys)) != len(keys) or len(set(outputs)) != len(outputs):
        raise ValueError("job items must have unique keys and unique output paths")
    return sorted(items, key=lambda item: item.key)


def run_job(
    items: Sequence[JobItem],
    out_dir: str | Path,
    process: ItemProcessor,
    *,
    fingerprint: JobFingerprint,
    shard: str | tuple[int, int] | ShardSpec | None = None,
    overwrite: bool = False,
    progress: bool = True,
    description: str = "job",
    environ: Mapping[str, str] | None = None,
) -> JobSummary:
    """Run this process's shard of ``items``, writing outputs under ``out_dir``.

    ``process(item)`` must write ``item.output_path`` atomically (or raise); it may
    return warning strings or an :class:`ItemResult` (warnings and notes), which are
    logged and recorded in the item's manifest record (a skipped item keeps the
    ones of the attempt that made its output). Items
    already finished with the same input, checkpoint and config hashes are skipped
    unless ``overwrite``; anything else (new, failed, interrupted) is (re)done and
    replaces what is at its output path. An exception from one item is recorded as
    a failure and the job goes on; KeyboardInterrupt and SystemExit stop it.
    """
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    shard_spec = resolve_shard(shard, environ)
    my_items = select_shard(_check_items(items), shard_spec)
    previous_records = merge_manifests(out_dir)
    manifest_path = out_dir / shard_spec.manifest_name
    summary = JobSummary(manifest_path=manifest_path, shard=str(shard_spec))
    LOG.info("%s: shard %s has %d of %d items", description, shard_spec, len(my_items), len(items))

    with (
        ManifestWriter(manifest_path) as manifest,
        ItemProgress(len(my_items), description=description, enabled=progress) as reporter,
    ):
        for item in my_items:
            started = time.perf_counter()
            input_sha256 = output_sha256 = error = None
            result = ItemResult()
            try:
                input_sha256 = sha256_path(item.input_path) if item.input_path is not None else None
                previous = previous_records.get(item.key)
                if not overwrite and _is_finished(previous, item, input_sha256, fingerprint, out_dir):
                    status, output_sha256 = "skipped", previous.output_sha256
                    result = ItemResult(tuple(previous.warnings or ()), tuple(previous.notes or ()))
                else:
                    remove_stale_temporaries(item.output_path)
                    result = _item_result(process(item))
                    if not item.output_path.exists():
                        raise RuntimeError(f"the job wrote nothing at {item.output_path}")
                    status, output_sha256 = "done", sha256_path(item.output_path)
            except Exception as exc:  # one bad item must not stop the job
                status, error = "failed", _error_text(exc)
                if not progress:  # with progress on, the progress line reports it
                    LOG.warning("%s: %s failed: %s", description, item.key, error)
            if status == "done":
                for note in result.notes:
                    LOG.info("%s: %s: %s", description, item.key, note)
                if not progress:  # with progress on, the progress line reports them
                    for warning in result.warnings:
                        LOG.warning("%s: %s: %s", description, item.key, warning)
            record = ManifestRecord(
                key=item.key,
                status=status,
                input=str(item.input_path) if item.input_path is not None else None,
                output=_relative_output(item.output_path, out_dir) if status != "failed" else None,
                input_sha256=input_sha256,
                output_sha256=output_sha256,
                checkpoint_sha256=fingerprint.checkpoint_sha256,
                config_sha256=fingerprint.config_sha256,
                error=error,
                seconds=round(time.perf_counter() - started, 3),
                finished_at=time.time(),
                shard=str(shard_spec),
                warnings=list(result.warnings) or None,
                notes=list(result.notes) or None,
            )
            manifest.append(record)
            summary.add(record)
            reporter.item_finished(
                item.output_path.name,
                status,
                record.seconds,
                error,
                warnings=result.warnings if status == "done" else (),
            )
    return summary


def summarize_job(out_dir: str | Path) -> JobSummary:
    """Merge every shard's manifest in ``out_dir`` into one summary (newest record per item)."""
    summary = JobSummary(shard="all")
    for _, record in sorted(merge_manifests(out_dir).items()):
        summary.add(record)
    return summary
