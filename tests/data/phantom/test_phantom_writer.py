"""Writing a phantom dataset: files, datalist layout, split, geometry, checksums, bad arguments."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.data.phantom import PhantomDatasetConfig, split_subjects, write_phantom_dataset
from medgan.data.phantom import tissues as t
from medgan.errors import ConfigError, OutputPathError

SMALL = {"subjects": 4, "shape": (24, 24, 24), "lesion_fraction": 0.5, "seed": 3}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom")
    done: list[int] = []
    result = write_phantom_dataset(out, PhantomDatasetConfig(**SMALL), on_subject_done=done.append)
    assert done == [0, 1, 2, 3]
    return result


def test_datalist_lists_every_subject_once_with_relative_paths(small_dataset):
    datalist = json.loads(small_dataset.datalist_path.read_text())
    assert {"description", "tissues", "training", "validation", "test"} <= set(datalist)
    assert datalist["tissues"] == t.tissue_legend()
    entries = datalist["training"] + datalist["validation"] + datalist["test"]
    subjects = [entry["subject"] for entry in entries]
    assert sorted(subjects) == [f"subject_{i:03d}" for i in range(4)]  # disjoint and complete
    for entry in entries:
        for key in ("mri", "ct", "labels"):
            assert not Path(entry[key]).is_absolute()
            assert (small_dataset.out_dir / entry[key]).is_file()
        if entry["label"] == 1:
            assert (small_dataset.out_dir / entry["lesion_mask"]).is_file()
            assert entry["lesion_type"] in {"hypointense_mass", "haemorrhage", "calcified_mass"}
        else:
            assert entry["label"] == 0 and "lesion_mask" not in entry and "lesion_type" not in entry
    assert sum(entry["label"] for entry in entries) == small_dataset.lesion_subjects == 2


def test_volumes_read_back_with_ras_affine_spacing_and_small_dtypes(small_dataset):
    spacing = 240.0 / 24
    for name, dtype in (("mri", np.int16), ("ct", np.int16), ("labels", np.uint8)):
        image = nib.load(small_dataset.out_dir / "subject_000" / f"{name}.nii.gz")
        assert image.shape == (24, 24, 24)
        assert image.get_data_dtype() == dtype
        assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
        np.testing.assert_allclose(image.header.get_zooms(), (spacing,) * 3)
        # the field of view is centred on the scanner isocentre
        centre = image.affine @ np.array([11.5, 11.5, 11.5, 1.0])
        np.testing.assert_allclose(centre[:3], 0.0, atol=1e-6)
        assert int(image.header["sform_code"]) == 1


def test_checksum_file_matches_every_written_file(small_dataset):
    lines = small_dataset.checksums_path.read_text().splitlines()
    listed = {}
    for line in lines:
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    assert {"datalist.json", "montage.png", "subject_000/ct.nii.gz"} <= set(listed)
    for rel, digest in listed.items():
        assert hashlib.sha256((small_dataset.out_dir / rel).read_bytes()).hexdigest() == digest
    assert small_dataset.montage_path.stat().st_size > 10_000


def test_same_arguments_give_byte_identical_files(small_dataset, tmp_path):
    again = write_phantom_dataset(tmp_path, PhantomDatasetConfig(**SMALL))
    assert again.checksums_path.read_bytes() == small_dataset.checksums_path.read_bytes()


def test_a_subject_does_not_depend_on_how_many_are_generated(small_dataset, tmp_path):
    fewer = write_phantom_dataset(tmp_path, PhantomDatasetConfig(**{**SMALL, "subjects": 2}))
    for name in ("mri", "ct", "labels"):
        rel = f"subject_001/{name}.nii.gz"
        assert (fewer.out_dir / rel).read_bytes() == (small_dataset.out_dir / rel).read_bytes()


def test_split_is_stratified_deterministic_and_disjoint():
    labels = [i % 2 for i in range(24)]
    split = split_subjects(labels, seed=0)
    assert split == split_subjects(labels, seed=0)
    assert {name: len(v) for name, v in split.items()} == {"training": 16, "validation": 4, "test": 4}
    assert sorted(split["training"] + split["validation"] + split["test"]) == list(range(24))
    for name in ("validation", "test"):
        assert sum(labels[i] for i in split[name]) == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"subjects": 0}, "subjects"),
        ({"subjects": 2.5}, "subjects"),
        ({"shape": (8, 64, 64)}, "too small"),
        ({"shape": (64, 64)}, "shape"),
        ({"lesion_fraction": 1.5}, "lesion_fraction"),
        ({"lesion_fraction": -0.1}, "lesion_fraction"),
        ({"seed": -1}, "seed"),
        ({"spacing_mm": 1.0}, "field of view"),
        ({"spacing_mm": (4.0, 4.0, 0.0)}, "spacing_mm"),
        ({"lesion_mix": "huge"}, "lesion mix"),
    ],
)
def test_bad_arguments_raise_config_error_naming_them(kwargs, words):
    with pytest.raises(ConfigError, match=words) as caught:
        PhantomDatasetConfig(**kwargs)
    assert "fix:" in str(caught.value)


def test_explicit_spacing_and_anisotropic_shape_are_kept():
    config = PhantomDatasetConfig(shape=(40, 48, 32), spacing_mm=(6.0, 5.0, 7.0))
    assert config.grid.spacing_mm == (6.0, 5.0, 7.0) and config.grid.shape == (40, 48, 32)


def test_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    with pytest.raises(OutputPathError, match="not a folder"):
        write_phantom_dataset(target, PhantomDatasetConfig(subjects=1, shape=(16, 16, 16)))
