"""Output names come from input paths only and are unique."""

from __future__ import annotations

from pathlib import Path

from medgan.jobs.naming import input_stem, sanitize_name, unique_output_names


def test_sanitize_and_stem() -> None:
    assert sanitize_name("../../etc/passwd") == "etc_passwd"
    assert sanitize_name("Patient Name^Joe (1)") == "Patient_Name_Joe_1"
    assert sanitize_name("...") == "item"
    assert len(sanitize_name("x" * 500)) == 96
    assert input_stem("/a/b/mri.nii.gz") == "mri"
    assert input_stem("/a/b/scan.NII") == "scan"
    assert input_stem("/a/series_01") == "series_01"


def test_unique_names_disambiguate_with_parents_then_hash(tmp_path: Path) -> None:
    inputs = [
        tmp_path / "s1" / "mri.nii.gz",
        tmp_path / "s2" / "mri.nii.gz",
        tmp_path / "other.nii.gz",
        tmp_path / "s1_mri.nii",  # collides with the parent-prefixed name of s1/mri
        tmp_path / "x" / "MRI.nii.gz",  # collides case-insensitively
    ]
    names = unique_output_names(inputs)
    assert names[(tmp_path / "other.nii.gz").absolute()] == "other"
    assert names[(tmp_path / "s2" / "mri.nii.gz").absolute()] == "s2_mri"
    assert len({name.lower() for name in names.values()}) == len(inputs)
    # deterministic and order independent
    assert unique_output_names(list(reversed(inputs))) == names
    for name in names.values():
        assert name == sanitize_name(name)


def test_names_use_as_many_parents_as_needed(tmp_path: Path) -> None:
    inputs = [tmp_path / "a" / "case" / "mri.nii.gz", tmp_path / "b" / "case" / "mri.nii.gz"]
    names = unique_output_names(inputs)
    assert sorted(names.values()) == ["a_case_mri", "b_case_mri"]


def test_paths_that_sanitize_alike_fall_back_to_a_path_hash(tmp_path: Path) -> None:
    inputs = [tmp_path / "a b" / "mri.nii.gz", tmp_path / "a_b" / "mri.nii.gz"]
    names = unique_output_names(inputs)
    assert len(set(names.values())) == 2
    for name in names.values():
        stem, digest = name.rsplit("-", 1)
        assert stem == "mri" and len(digest) == 8
