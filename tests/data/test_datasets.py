"""Datasets: cache policies, paired validation, and seeded unpaired MRI/CT sampling on tiny volumes."""

import numpy as np
import pytest
import torch
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset

from medgan.data.datasets import UnpairedDataset, build_dataset, build_paired_dataset, build_unpaired_dataset
from medgan.data.transforms import build_transforms
from medgan.errors import ConfigError, InputError
from medgan.io import write_nifti

AFFINE = np.diag([-1.5, -1.5, 1.5, 1.0])


@pytest.fixture
def entries(tmp_path):
    """Three subjects with an MRI and a CT each: a textured box whose size depends on the subject."""
    rows = []
    ramp = np.linspace(0.5, 1.0, 16, dtype=np.float32)[:, None, None]
    for index in range(3):
        body = np.zeros((16, 16, 16), np.float32)
        body[3 : 11 + index, 4:12, 4:12] = 1.0
        body *= ramp
        mri = write_nifti(body * (200.0 + 50 * index), tmp_path / f"s{index}_mri.nii.gz", affine=AFFINE)
        ct = write_nifti(body * (1040.0 + 100 * index) - 1000.0, tmp_path / f"s{index}_ct.nii.gz", affine=AFFINE)
        rows.append({"subject": f"s{index}", "mri": str(mri), "ct": str(ct)})
    return rows


def _paired_chain():
    return build_transforms({"mri": "mri", "ct": "ct"}, train=False)


def test_cache_policies_pick_the_monai_dataset_and_give_the_same_items(entries, tmp_path):
    chain = _paired_chain()
    plain = build_dataset(entries, chain)
    memory = build_dataset(entries, chain, cache="memory")
    disk = build_dataset(entries, chain, cache="disk", cache_dir=tmp_path / "cache")
    assert type(plain) is Dataset and isinstance(memory, CacheDataset) and isinstance(disk, PersistentDataset)
    for dataset in (memory, disk):
        torch.testing.assert_close(dataset[1]["ct"].as_tensor(), plain[1]["ct"].as_tensor())
    assert any((tmp_path / "cache").iterdir())


def test_cache_policy_errors(entries):
    with pytest.raises(ConfigError, match="needs a cache_dir"):
        build_dataset(entries, _paired_chain(), cache="disk")
    with pytest.raises(ConfigError, match="(?s)unknown cache policy 'ram'.*none, memory, disk"):
        build_dataset(entries, _paired_chain(), cache="ram")


def test_paired_dataset_requires_both_modalities(entries):
    broken = [*entries[:2], {"subject": "s9", "mri": entries[0]["mri"]}]
    with pytest.raises(InputError, match=r"entry 2 \(subject s9\) lacks \['ct'\]"):
        build_paired_dataset(broken, _paired_chain())
    dataset = build_paired_dataset(entries, _paired_chain())
    assert dataset[0]["mri"].shape == dataset[0]["ct"].shape


def test_unpaired_indices_are_seeded_per_epoch_and_avoid_self_pairs(entries):
    source = Dataset(entries, transform=None)
    target = Dataset(entries, transform=None)
    unpaired = UnpairedDataset(source, target, seed=5, length=40)
    first = [unpaired.indices(i) for i in range(40)]
    assert first == [UnpairedDataset(source, target, seed=5, length=40).indices(i) for i in range(40)]
    assert all(s != t for s, t in first)  # every entry is its own subject here
    assert len({s for s, _ in first}) == 3 and len({t for _, t in first}) == 3
    item = unpaired[0]
    assert set(item) == {"mri", "ct"}
    assert item["mri"] == entries[first[0][0]]["mri"] and item["ct"] == entries[first[0][1]]["ct"]
    unpaired.set_epoch(1)
    assert [unpaired.indices(i) for i in range(40)] != first
    with pytest.raises(IndexError):
        unpaired[40]


def test_unpaired_patches_from_two_chains_batch_together(entries):
    mri_chain = build_transforms({"mri": "mri"}, patch_size=16, samples_per_volume=2)
    ct_chain = build_transforms({"ct": "ct"}, patch_size=16, samples_per_volume=2)
    mri_chain.set_random_state(0)
    ct_chain.set_random_state(0)
    unpaired = build_unpaired_dataset(entries[:2], entries[1:], mri_chain, ct_chain, seed=1, length=3)
    items = unpaired[0]
    assert isinstance(items, list) and len(items) == 2
    assert all(set(patch) == {"mri", "ct"} for patch in items)
    batch = next(iter(DataLoader(unpaired, batch_size=2, num_workers=0)))
    assert batch["mri"].shape == batch["ct"].shape == (4, 1, 16, 16, 16)  # 2 items x 2 patches
    assert batch["mri"].min() >= -1.0 - 1e-6 and batch["ct"].max() <= 1.0 + 1e-6


def test_unpaired_needs_both_sides(entries):
    with pytest.raises(ConfigError, match="0 target"):
        UnpairedDataset(Dataset(entries), Dataset([]))


def test_a_bad_volume_surfaces_as_input_error_not_monai_runtime_error(tmp_path):
    empty = write_nifti(np.zeros((8, 8, 8), np.float32), tmp_path / "empty_mri.nii.gz", affine=AFFINE)
    dataset = build_dataset([{"mri": str(empty)}], build_transforms({"mri": "mri"}, train=False))
    with pytest.raises(InputError, match="empty_mri.nii.gz.*no usable foreground"):
        dataset[0]
