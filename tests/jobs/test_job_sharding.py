"""Sharding splits a job's sorted items into disjoint shards that cover every item."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medgan.errors import ConfigError
from medgan.jobs.sharding import (
    ShardSpec,
    combine_shards,
    parse_shard,
    resolve_shard,
    select_shard,
    shard_from_environment,
)


@given(n_items=st.integers(0, 60), n_shards=st.integers(1, 9))
def test_shards_partition_the_items_exactly(n_items: int, n_shards: int) -> None:
    items = [f"item{i:03d}" for i in range(n_items)]
    shards = [select_shard(items, ShardSpec(index, n_shards)) for index in range(n_shards)]
    flattened = [item for shard in shards for item in shard]
    assert sorted(flattened) == items  # union is everything, and nothing appears twice
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced


@given(n_items=st.integers(0, 40), n_shards=st.integers(1, 5), world_size=st.integers(1, 4))
def test_torchrun_ranks_split_each_shard_further(n_items: int, n_shards: int, world_size: int) -> None:
    items = list(range(n_items))
    everything = []
    for index in range(n_shards):
        outer_items = select_shard(items, ShardSpec(index, n_shards))
        for rank in range(world_size):
            env = {"RANK": str(rank), "WORLD_SIZE": str(world_size)}
            combined = resolve_shard(f"{index}/{n_shards}", env)
            chosen = select_shard(items, combined)
            assert chosen == select_shard(outer_items, ShardSpec(rank, world_size))
            everything.extend(chosen)
    assert sorted(everything) == items


@pytest.mark.parametrize("text", ["3/2", "2/2", "-1/4", "a/b", "1", "1/0", "", "0/4/1"])
def test_bad_shard_strings_raise_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_shard(text)


def test_shard_forms_agree() -> None:
    assert parse_shard("1/4") == parse_shard((1, 4)) == ShardSpec(1, 4)
    assert parse_shard(None) == ShardSpec(0, 1)
    with pytest.raises(ConfigError):
        parse_shard((True, 2))


def test_environment_shard() -> None:
    assert shard_from_environment({}) == ShardSpec(0, 1)
    assert shard_from_environment({"RANK": "2", "WORLD_SIZE": "3"}) == ShardSpec(2, 3)
    with pytest.raises(ConfigError):
        shard_from_environment({"RANK": "x", "WORLD_SIZE": "3"})
    with pytest.raises(ConfigError):
        shard_from_environment({"RANK": "3", "WORLD_SIZE": "3"})
    assert combine_shards(ShardSpec(1, 2), ShardSpec(0, 1)) == ShardSpec(1, 2)


def test_manifest_names_differ_per_shard() -> None:
    assert ShardSpec(0, 1).manifest_name == "manifest.jsonl"
    assert ShardSpec(1, 3).manifest_name == "manifest-shard-1-of-3.jsonl"
