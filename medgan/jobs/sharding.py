"""Split one job's items between many processes or machines, deterministically.

A shard ``i/n`` takes every n-th item of the job's sorted item list starting at
``i``; the n shards are disjoint and together cover every item, whatever machine
runs them. ``torchrun`` ranks (``RANK`` / ``WORLD_SIZE``) split further without a
process group: shard ``i/n`` on rank ``r`` of ``w`` becomes shard ``i + n*r`` of ``n*w``,
which takes exactly the rank's share of shard ``i``'s items.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from medgan.errors import ConfigError

T = TypeVar("T")

_SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count} is out of range",
                fix="use --shard i/n with n >= 1 and 0 <= i <= n-1, e.g. --shard 0/4",
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def manifest_name(self) -> str:
        """The manifest file this shard owns, so concurrent shards never write the same file."""
        if self.count == 1:
            return "manifest.jsonl"
        return f"manifest-shard-{self.index}-of-{self.count}.jsonl"


WHOLE_JOB = ShardSpec(0, 1)


def parse_shard(shard: str | tuple[int, int] | ShardSpec | None) -> ShardSpec:
    """Read ``"i/n"``, ``(i, n)``, a :class:`ShardSpec` or ``None`` (the whole job).

    Anything else (``"3/2"``, ``"a/b"``, ``"-1/4"``, ``(1, 0)``) raises :class:`ConfigError`.
    """
    if shard is None:
        return WHOLE_JOB
    if isinstance(shard, ShardSpec):
        return shard
    if isinstance(shard, str):
        match = _SHARD_PATTERN.match(shard)
        if match is None:
            raise ConfigError(
                f"--shard value {shard!r} is not of the form i/n",
                fix="write it as two whole numbers, e.g. --shard 0/4 for the first of four shards",
            )
        return ShardSpec(int(match.group(1)), int(match.group(2)))
    if (
        isinstance(shard, Sequence)
        and len(shard) == 2
        and all(isinstance(part, int) and not isinstance(part, bool) for part in shard)
    ):
        return ShardSpec(int(shard[0]), int(shard[1]))
    raise ConfigError(f"shard {shard!r} is neither 'i/n' nor a pair (i, n)", fix="pass e.g. '0/4' or (0, 4)")


def shard_from_environment(environ: Mapping[str, str] | None = None) -> ShardSpec:
    """The torchrun rank as a shard (``RANK`` of ``WORLD_SIZE``), or the whole job when unset."""
    environ = os.environ if environ is None else environ
    rank_text, world_text = environ.get("RANK"), environ.get("WORLD_SIZE")
    if rank_text is None and world_text is None:
        return WHOLE_JOB
    try:
        rank, world_size = int(rank_text or "0"), int(world_text or "1")
    except ValueError as exc:
        raise ConfigError(
            f"RANK={rank_text!r} / WORLD_SIZE={world_text!r} are not whole numbers",
            fix="launch with torchrun, or unset RANK and WORLD_SIZE",
        ) from exc
    return ShardSpec(rank, world_size)


def combine_shards(outer: ShardSpec, inner: ShardSpec) -> ShardSpec:
    """Shard ``inner`` of shard ``outer``'s items, as one shard of the full sorted list.

    ``items[i::n][r::w] == items[i + n*r :: n*w]``, so the combined shard is a subset
    of the outer one and the ``n*w`` combined shards still partition the whole list.
    """
    return ShardSpec(outer.index + outer.count * inner.index, outer.count * inner.count)


def resolve_shard(
    shard: str | tuple[int, int] | ShardSpec | None, environ: Mapping[str, str] | None = None
) -> ShardSpec:
    """The shard this process runs: the explicit ``--shard`` split further by torchrun ranks."""
    return combine_shards(parse_shard(shard), shard_from_environment(environ))


def select_shard(sorted_items: Sequence[T], shard: ShardSpec) -> list[T]:
    """The items of ``shard``: every ``count``-th item starting at ``index`` (round robin, balanced)."""
    return list(sorted_items[shard.index :: shard.count])
