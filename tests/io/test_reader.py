"""read_volume dispatch, read_many, ReadOptions validation and the MONAI reader inside LoadImaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dicom_factory import make_series
from monai.data import DataLoader, Dataset
from monai.transforms import EnsureChannelFirstd, LoadImaged

from medgan.errors import ConfigError, InputError, MedganError
from medgan.io import MedganImageReader, ReadOptions, read_many, read_volume, read_warnings_of, write_nifti


def _nifti(path: Path, seed: int = 0, nan: bool = False) -> Path:
    values = np.random.default_rng(seed).random((4, 3, 2)).astype(np.float32)
    if nan:
        values[0, 0, 0] = np.nan
    affine = np.diag([1.5, 2.0, 3.0, 1.0])
    affine[:3, 3] = [5.0, -6.0, 7.0]
    return write_nifti(values, path, affine=affine)


def test_load_imaged_with_medgan_reader_matches_read_volume(tmp_path: Path) -> None:
    make_series(tmp_path / "ct", n_slices=3)
    path = _nifti(tmp_path / "v.nii.gz")
    loader = LoadImaged(keys=["ct", "mri"], reader=MedganImageReader())
    sample = loader({"ct": str(tmp_path / "ct"), "mri": str(path)})
    for key, source in (("ct", tmp_path / "ct"), ("mri", path)):
        direct = read_volume(source)
        assert sample[key].shape == direct.shape and sample[key].shape[0] == 1
        np.testing.assert_array_equal(sample[key].numpy(), direct.numpy())
        np.testing.assert_allclose(sample[key].affine.numpy(), direct.affine.numpy())
        assert sample[key].meta["modality"] == direct.meta["modality"]
    # Already channel-first: EnsureChannelFirstd must leave it alone.
    assert EnsureChannelFirstd(keys=["ct"])(sample)["ct"].shape == sample["ct"].shape


def test_dataloader_batches_volumes_with_different_warnings(tmp_path: Path) -> None:
    clean = _nifti(tmp_path / "a.nii.gz")
    repaired = _nifti(tmp_path / "b.nii.gz", seed=1, nan=True)
    reader = MedganImageReader(options=ReadOptions(nan_policy="replace"))
    dataset = Dataset([{"img": str(clean)}, {"img": str(repaired)}], transform=LoadImaged(["img"], reader=reader))
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["img"].shape == (2, 1, 4, 3, 2)
    assert batch["img"].meta["nonfinite_replaced"].tolist() == [0, 1]
    assert read_warnings_of(batch["img"].meta)[0].startswith("replaced 1 non-finite")


def test_read_many_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    good = _nifti(tmp_path / "good.nii.gz")
    bad = _nifti(tmp_path / "bad.nii.gz", nan=True)
    results = list(read_many([bad, tmp_path / "missing.nii.gz", good]))
    assert [path.name for path, _ in results] == ["bad.nii.gz", "missing.nii.gz", "good.nii.gz"]
    assert isinstance(results[0][1], InputError) and "not finite" in str(results[0][1])
    assert isinstance(results[1][1], MedganError) and "not found" in str(results[1][1])
    assert isinstance(results[2][1], torch.Tensor) and results[2][1].shape == (1, 4, 3, 2)


def test_unknown_file_type_and_series_uid_on_a_file_are_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unrecognised file type"):
        read_volume(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="series_uid"):
        read_volume(_nifti(tmp_path / "v.nii.gz"), series_uid="1.2.3")


def test_read_options_refuse_bad_values() -> None:
    with pytest.raises(ConfigError, match="nan_policy"):
        ReadOptions(nan_policy="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="min_slices"):
        ReadOptions(min_slices=0)
    with pytest.raises(ConfigError, match="max_bytes"):
        ReadOptions(max_bytes=0)
