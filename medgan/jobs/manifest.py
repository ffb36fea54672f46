"""The job manifest: one JSON line per finished attempt, appended and fsynced.

Each shard appends to its own file (``manifest.jsonl`` or
``manifest-shard-i-of-n.jsonl``) so concurrent shards never share a file. A line
is written in one ``write`` call and fsynced before the job moves on; a job killed
mid-line leaves at most one torn last line, which readers skip and the next
writer seals with a newline. The newest record of an item (by ``finished_at``)
is its state; :func:`merge_manifests` reads every shard's file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

LOG = logging.getLogger(__name__)

ItemStatus = Literal["done", "failed", "skipped"]
MANIFEST_GLOB = "manifest*.jsonl"


@dataclass(frozen=True)
class ManifestRecord:
    """What happened to one item in one attempt, and the hashes that say whether to trust it.

    ``key`` identifies the item across runs (the absolute input path for translate);
    ``output`` is relative to the job's output folder so the folder can be moved.
    ``warnings`` are the job's doubts about an item it still processed (e.g. a field
    of view much smaller than the training images'); ``notes`` say what it did that a
    user may want to know (e.g. how the input was resampled). Both are None when empty,
    and absent in manifests older than them (read back as None).
    """

    key: str
    status: ItemStatus
    input: str | None
    output: str | None
    input_sha256: str | None
    output_sha256: str | None
    checkpoint_sha256: str | None
    config_sha256: str | None
    error: str | None
    seconds: float
    finished_at: float
    shard: str
    warnings: list[str] | None = None
    notes: list[str] | None = None

    def to_json(self) -> str:
        """One compact JSON line (no trailing newline)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, values: dict) -> ManifestRecord:
        """Build a record from a parsed line, ignoring keys a newer medgan may have added."""
        known = {field.name for field in fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})


class ManifestWriter:
    """Append records to one manifest file, each line flushed and fsynced before returning."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._seal_torn_line()

    def _seal_torn_line(self) -> None:
        """End a torn last line (a killed writer) so the next record starts on its own line."""
        size = self._handle.tell()
        if size == 0:
            return
        with open(self.path, "rb") as reader:
            reader.seek(size - 1)
            if reader.read(1) != b"\n":
                self._handle.write(b"\n")

    def append(self, record: ManifestRecord) -> None:
        """Write ``record`` as one line and make it durable."""
        self._handle.write((record.to_json() + "\n").encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file (records are already durable)."""
        self._handle.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_manifest(path: str | Path) -> list[ManifestRecord]:
    """All records of one manifest file in file order; torn or foreign lines are skipped with a warning."""
    records: list[ManifestRecord] = []
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(ManifestRecord.from_dict(json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                LOG.warning("%s:%d: skipping unreadable manifest line (%s)", path, line_number, exc)
    return records


def manifest_files(out_dir: str | Path) -> list[Path]:
    """Every shard's manifest file in ``out_dir``, sorted by name."""
    return sorted(Path(out_dir).glob(MANIFEST_GLOB))


def merge_manifests(out_dir: str | Path) -> dict[str, ManifestRecord]:
    """The newest record of every item over all manifest files in ``out_dir``.

    Newest means the largest ``finished_at``; on a tie the later line (or later
    file in name order) wins, so the result is deterministic.
    """
    latest: dict[str, ManifestRecord] = {}
    for path in manifest_files(out_dir):
        for record in read_manifest(path):
            previous = latest.get(record.key)
            if previous is None or record.finished_at >= previous.finished_at:
                latest[record.key] = record
    return latest
