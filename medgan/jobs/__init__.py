"""medgan.jobs: resumable, shardable batch jobs with a manifest and atomic per-item outputs.

Translate, generate and reconstruct all run through :func:`run_job`: items are
sorted and split into shards, each finished item is recorded in an fsynced
manifest line, re-runs skip what is done, and one bad input never stops the job.
"""

from medgan.jobs.manifest import ManifestRecord, ManifestWriter, manifest_files, merge_manifests, read_manifest
from medgan.jobs.naming import input_stem, sanitize_name, unique_output_names
from medgan.jobs.runner import (
    ItemResult,
    JobFailure,
    JobFingerprint,
    JobItem,
    JobSummary,
    remove_stale_temporaries,
    run_job,
    summarize_job,
)
from medgan.jobs.sharding import ShardSpec, parse_shard, resolve_shard, select_shard, shard_from_environment

__all__ = [
    "ItemResult",
    "JobFailure",
    "JobFingerprint",
    "JobItem",
    "JobSummary",
    "ManifestRecord",
    "ManifestWriter",
    "ShardSpec",
    "input_stem",
    "manifest_files",
    "merge_manifests",
    "parse_shard",
    "read_manifest",
    "remove_stale_temporaries",
    "resolve_shard",
    "run_job",
    "sanitize_name",
    "select_shard",
    "shard_from_environment",
    "summarize_job",
    "unique_output_names",
]
