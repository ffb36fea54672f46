"""fastMRI-style HDF5 files: read back what was written; refuse files that are not k-space."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from medgan.errors import InputError
from medgan.io.kspace_h5 import read_kspace_h5, write_kspace_h5


def test_single_and_multi_coil_files_round_trip(tmp_path: Path) -> None:
    kspace = torch.randn(3, 16, 12, dtype=torch.complex64)
    target = torch.rand(3, 16, 12)
    read = read_kspace_h5(write_kspace_h5(tmp_path / "single.h5", kspace, target))
    assert torch.equal(read.kspace, kspace) and torch.equal(read.target, target) and not read.multicoil
    assert read.attributes["acquisition"] == "medgan-simulated"
    multi = read_kspace_h5(write_kspace_h5(tmp_path / "multi.h5", torch.randn(2, 4, 8, 8, dtype=torch.complex64)))
    assert multi.multicoil and multi.target is None


def test_files_that_are_not_kspace_are_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5 file") as caught:
        read_kspace_h5(tmp_path / "text.h5")
    assert "text.h5" in str(caught.value)
    with h5py.File(tmp_path / "image.h5", "w") as handle:
        handle.create_dataset("image", data=np.zeros((2, 4, 4)))
    with pytest.raises(InputError, match="no 'kspace' dataset"):
        read_kspace_h5(tmp_path / "image.h5")
    with h5py.File(tmp_path / "real.h5", "w") as handle:
        handle.create_dataset("kspace", data=np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InputError, match="not complex"):
        read_kspace_h5(tmp_path / "real.h5")
    with h5py.File(tmp_path / "flat.h5", "w") as handle:
        handle.create_dataset("kspace", data=np.zeros((16,), np.complex64))
    with pytest.raises(InputError, match="expected"):
        read_kspace_h5(tmp_path / "flat.h5")
    with pytest.raises(InputError, match="no such file"):
        read_kspace_h5(tmp_path / "missing.h5")


def test_a_stored_line_mask_is_read_and_checked(tmp_path: Path) -> None:
    kspace = torch.randn(2, 8, 6, dtype=torch.complex64)
    mask = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float32)
    read = read_kspace_h5(write_kspace_h5(tmp_path / "masked.h5", kspace, mask=mask))
    assert torch.equal(read.mask, mask)
    with pytest.raises(InputError, match="expected 6 zeros and ones"):
        read_kspace_h5(write_kspace_h5(tmp_path / "short.h5", kspace, mask=mask[:4]))
    with pytest.raises(InputError, match="samples no k-space line"):
        read_kspace_h5(write_kspace_h5(tmp_path / "empty.h5", kspace, mask=torch.zeros(6)))
    with pytest.raises(InputError, match="target image has shape"):
        read_kspace_h5(write_kspace_h5(tmp_path / "target.h5", kspace, target=torch.rand(3, 4, 4)))
