"""The generic job runner: manifest, skip, redo, resume after a kill, failures, shards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medgan.errors import InputError
from medgan.io.atomic import atomic_path
from medgan.io.hashing import sha256_file
from medgan.jobs import (
    ItemResult,
    JobFingerprint,
    JobItem,
    ManifestWriter,
    read_manifest,
    run_job,
    summarize_job,
)

FINGERPRINT = JobFingerprint(checkpoint_sha256="c" * 64, config_sha256="f" * 64)


class UppercaseJob:
    """A real (small) job: each output is its input's text upper-cased; counts its calls."""

    def __init__(self) -> None:
        self.processed: list[str] = []

    def __call__(self, item: JobItem) -> None:
        self.processed.append(item.key)
        text = item.input_path.read_text()
        if "BAD" in text:
            raise InputError("holds the word BAD", path=item.input_path, fix="remove it")
        with atomic_path(item.output_path) as tmp:
            tmp.write_text(text.upper())


def make_items(tmp_path: Path, n_items: int = 4) -> tuple[list[JobItem], Path]:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    items = []
    for index in range(n_items):
        source = in_dir / f"item{index}.txt"
        source.write_text(f"content {index}")
        items.append(JobItem(key=str(source), input_path=source, output_path=out_dir / f"item{index}.out"))
    return items, out_dir


def test_first_run_writes_outputs_and_manifest(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path)
    summary = run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)
    assert (summary.n_done, summary.n_skipped, summary.n_failed, summary.exit_code) == (4, 0, 0, 0)
    assert (out_dir / "item2.out").read_text() == "CONTENT 2"
    records = read_manifest(out_dir / "manifest.jsonl")
    assert [record.status for record in records] == ["done"] * 4
    record = records[1]
    assert record.input == str(items[1].input_path)
    assert record.output == "item1.out"
    assert record.input_sha256 == sha256_file(items[1].input_path)
    assert record.output_sha256 == sha256_file(out_dir / "item1.out")
    assert (record.checkpoint_sha256, record.config_sha256) == (FINGERPRINT.checkpoint_sha256, "f" * 64)
    assert record.error is None and record.seconds >= 0 and record.shard == "0/1"


def test_rerun_skips_and_redoes_only_what_changed(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path)
    run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)

    again = UppercaseJob()
    summary = run_job(items, out_dir, again, fingerprint=FINGERPRINT, progress=False)
    assert (summary.n_done, summary.n_skipped) == (0, 4) and again.processed == []

    items[0].input_path.write_text("new content")  # changed input
    (out_dir / "item1.out").write_text("tampered")  # damaged output
    (out_dir / "item2.out").unlink()  # lost output
    again = UppercaseJob()
    summary = run_job(items, out_dir, again, fingerprint=FINGERPRINT, progress=False)
    assert sorted(again.processed) == [item.key for item in items[:3]]
    assert (out_dir / "item0.out").read_text() == "NEW CONTENT"
    assert (out_dir / "item1.out").read_text() == "CONTENT 1"

    other_checkpoint = JobFingerprint(checkpoint_sha256="d" * 64, config_sha256="f" * 64)
    again = UppercaseJob()
    run_job(items, out_dir, again, fingerprint=other_checkpoint, progress=False)
    assert len(again.processed) == 4

    again = UppercaseJob()
    summary = run_job(items, out_dir, again, fingerprint=other_checkpoint, overwrite=True, progress=False)
    assert len(again.processed) == 4 and summary.n_done == 4


def test_bad_input_is_recorded_and_job_goes_on(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path)
    items[1].input_path.write_text("BAD")
    items[2].input_path.unlink()
    summary = run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)
    assert (summary.n_done, summary.n_failed, summary.exit_code) == (2, 2, 1)
    failed = {failure.key: failure.error for failure in summary.failures}
    assert "holds the word BAD" in failed[items[1].key] and "fix: remove it" in failed[items[1].key]
    assert "does not exist" in failed[items[2].key]
    assert not (out_dir / "item1.out").exists()
    statuses = {record.key: record.status for record in read_manifest(out_dir / "manifest.jsonl")}
    assert statuses[items[1].key] == "failed" and statuses[items[3].key] == "done"

    items[1].input_path.write_text("fixed")
    retry = UppercaseJob()
    summary = run_job(items, out_dir, retry, fingerprint=FINGERPRINT, progress=False)
    assert retry.processed == [items[1].key]  # the fixed failure is redone, finished ones skipped
    assert (summary.n_done, summary.n_skipped, summary.n_failed) == (1, 2, 1)


KILLED_JOB = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from medgan.io.atomic import atomic_path
    from medgan.jobs import JobFingerprint, JobItem, run_job

    in_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    def process(item):
        with atomic_path(item.output_path) as tmp:
            tmp.write_text("partial")
            if item.key.endswith("item2.txt"):
                os.kill(os.getpid(), signal.SIGKILL)  # die mid-write, like a node going away
            tmp.write_text(item.input_path.read_text().upper())
    items = [JobItem(str(p), p, out_dir / (p.stem + ".out")) for p in sorted(in_dir.glob("*.txt"))]
    run_job(items, out_dir, process, fingerprint=JobFingerprint("c" * 64, "f" * 64), progress=False)
    """
)


def test_killed_job_resumes_with_only_the_unfinished_items(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path, n_items=5)
    completed = subprocess.run(
        [sys.executable, "-c", KILLED_JOB, str(tmp_path / "in"), str(out_dir)], capture_output=True, timeout=120
    )
    assert completed.returncode == -signal.SIGKILL
    finals = sorted(path.name for path in out_dir.glob("*.out") if not path.name.startswith("."))
    assert finals == ["item0.out", "item1.out"]
    assert list(out_dir.glob(".item2.tmp-*")), "the killed write should have left only a temporary file"
    with open(out_dir / "manifest.jsonl", "a") as manifest:
        manifest.write('{"key": "torn')  # a line cut short by the kill

    resumed = UppercaseJob()
    summary = run_job(items, out_dir, resumed, fingerprint=FINGERPRINT, progress=False)
    assert resumed.processed == [item.key for item in items[2:]]
    assert (summary.n_skipped, summary.n_done) == (2, 3)
    assert not list(out_dir.glob(".item*"))  # leftovers cleaned
    assert (out_dir / "item2.out").read_text() == "CONTENT 2"
    lines = (out_dir / "manifest.jsonl").read_text().splitlines()
    assert all(json.loads(line) for line in lines if not line.startswith('{"key": "torn'))
    assert len(read_manifest(out_dir / "manifest.jsonl")) == 2 + 5


def test_shards_write_own_manifests_and_merge(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path, n_items=7)
    processed = []
    for index in range(3):
        job = UppercaseJob()
        summary = run_job(items, out_dir, job, fingerprint=FINGERPRINT, shard=f"{index}/3", progress=False)
        assert summary.manifest_path == out_dir / f"manifest-shard-{index}-of-3.jsonl"
        processed.extend(job.processed)
    assert sorted(processed) == sorted(item.key for item in items)
    merged = summarize_job(out_dir)
    assert (merged.n_done, merged.n_failed, merged.exit_code) == (7, 0, 0)
    # the same job unsharded later skips everything the shards did
    summary = run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)
    assert summary.n_skipped == 7


def test_torchrun_environment_selects_rank_share(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path, n_items=5)
    job = UppercaseJob()
    summary = run_job(
        items, out_dir, job, fingerprint=FINGERPRINT, progress=False, environ={"RANK": "1", "WORLD_SIZE": "2"}
    )
    assert job.processed == [items[1].key, items[3].key]
    assert summary.manifest_path.name == "manifest-shard-1-of-2.jsonl"


def test_progress_lines_when_not_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items, out_dir = make_items(tmp_path, n_items=2)
    items[1].input_path.write_text("BAD")
    run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=True, description="upper")
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("upper [1/2] done item0.out")
    assert lines[1].startswith("upper [2/2] failed item1.out") and "holds the word BAD" in " ".join(lines[1:])


def test_duplicate_items_are_refused(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path, n_items=2)
    with pytest.raises(ValueError, match="unique"):
        run_job([items[0], items[0]], out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)


def test_manifest_writer_seals_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"key": "a", "status": "do')
    items, out_dir = make_items(tmp_path, n_items=1)
    summary = run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)
    with ManifestWriter(path) as writer:
        writer.append(summary.records[0])
    assert [record.key for record in read_manifest(path)] == [items[0].key]


def test_warnings_and_notes_are_logged_and_recorded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    items, out_dir = make_items(tmp_path, n_items=3)
    upper = UppercaseJob()

    def doubtful(item: JobItem) -> ItemResult | list[str] | None:
        upper(item)
        index = int(item.key[-5])
        return [None, ["looks odd"], ItemResult(warnings=("small",), notes=("resampled",))][index]

    with caplog.at_level("INFO", logger="medgan.jobs.runner"):
        summary = run_job(items, out_dir, doubtful, fingerprint=FINGERPRINT, progress=False, description="upper")
    assert [(r.warnings, r.notes) for r in summary.records] == [
        (None, None),
        (["looks odd"], None),
        (["small"], ["resampled"]),
    ]
    assert f"upper: {items[1].key}: looks odd" in caplog.text and f"{items[2].key}: resampled" in caplog.text
    assert [r.warnings for r in read_manifest(out_dir / "manifest.jsonl")] == [None, ["looks odd"], ["small"]]


def test_manifests_older_than_warnings_still_load(tmp_path: Path) -> None:
    items, out_dir = make_items(tmp_path, n_items=1)
    run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False)
    manifest = out_dir / "manifest.jsonl"
    old_line = json.loads(manifest.read_text())
    del old_line["warnings"], old_line["notes"]
    manifest.write_text(json.dumps(old_line) + "\n")
    (record,) = read_manifest(manifest)
    assert record.status == "done" and record.warnings is None and record.notes is None
    assert run_job(items, out_dir, UppercaseJob(), fingerprint=FINGERPRINT, progress=False).n_skipped == 1
