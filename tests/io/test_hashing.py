"""SHA-256 of files, file sequences and folders: folder hashes follow content, not names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from medgan.errors import InputError
from medgan.io.hashing import sha256_file, sha256_files, sha256_path


def test_file_hash_is_sha256sum_of_its_bytes(tmp_path: Path) -> None:
    # larger than one 1 MiB read chunk, so chunking must not change the digest
    content = bytes(range(256)) * 5000
    (tmp_path / "weights.bin").write_bytes(content)
    assert sha256_file(tmp_path / "weights.bin") == hashlib.sha256(content).hexdigest()


def test_files_hash_is_the_hash_of_the_concatenated_bytes_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "networks.safetensors", tmp_path / "ema.safetensors"
    first.write_bytes(b"generator weights")
    second.write_bytes(b"ema weights")
    assert sha256_files([first, second]) == hashlib.sha256(b"generator weightsema weights").hexdigest()
    assert sha256_files([second, first]) != sha256_files([first, second])
    assert sha256_files([first]) == sha256_file(first)
    assert sha256_files([]) == hashlib.sha256(b"").hexdigest()


def test_folder_hash_depends_on_content_not_names(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for folder, names in ((first, ("a.dcm", "b.dcm")), (second, ("z1", "z2"))):
        folder.mkdir()
        (folder / names[0]).write_bytes(b"slice-1")
        (folder / names[1]).write_bytes(b"slice-2")
    (second / ".DS_Store").write_bytes(b"junk")
    assert sha256_path(first) == sha256_path(second)
    (second / "z2").write_bytes(b"slice-2 changed")
    assert sha256_path(first) != sha256_path(second)
    assert sha256_path(first / "a.dcm") == sha256_file(first / "a.dcm")


def test_missing_or_empty_inputs_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        sha256_path(tmp_path / "nope.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no files"):
        sha256_path(tmp_path / "empty")
