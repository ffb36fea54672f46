"""The sample-data job: regenerating the bundled sample_data/ gives the same files."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from medgan.errors import ConfigError
from pipelines.sample_data import make_sample_data

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
# The exact arguments recorded in sample_data/README.md.
BUNDLED_ARGS = {"subjects": 24, "shape": (48, 48, 48), "lesion_fraction": 0.5, "seed": 0}


def _read_checksums(path: Path) -> dict[str, str]:
    listed = {}
    for line in path.read_text().splitlines():
        digest, rel = line.split("  ", 1)
        listed[rel] = digest
    return listed


@pytest.mark.slow  # ~5 s on an idle 2-core machine, 10-16 s when the cores are shared
def test_regenerating_the_bundled_set_reproduces_its_checksums(tmp_path):
    summary = make_sample_data(tmp_path / "out", progress=False, **BUNDLED_ARGS)
    bundled = _read_checksums(SAMPLE_DATA / "checksums.sha256")
    regenerated = _read_checksums(summary.checksums_path)
    assert set(regenerated) == set(bundled)
    # montage.png bytes depend on the matplotlib build; NIfTI and JSON must match exactly
    data_files = sorted(rel for rel in bundled if rel != "montage.png")
    assert len(data_files) == 24 * 3 + 12 + 1
    mismatched = [rel for rel in data_files if regenerated[rel] != bundled[rel]]
    assert not mismatched, f"regenerate sample_data (see sample_data/README.md): {mismatched[:5]}"
    fresh = matplotlib.image.imread(summary.montage_path)
    assert fresh.shape == matplotlib.image.imread(SAMPLE_DATA / "montage.png").shape

    assert summary.subjects == 24 and summary.lesion_subjects == 12
    assert summary.split_sizes == {"training": 16, "validation": 4, "test": 4}
    assert summary.spacing_mm == (5.0, 5.0, 5.0)
    assert "24 subjects (12 with a lesion)" in str(summary)


def test_bundled_folder_is_small_and_its_readme_lists_every_checksum():
    files = [p for p in SAMPLE_DATA.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 10_000_000
    readme = (SAMPLE_DATA / "README.md").read_text()
    assert "--subjects 24 --shape 48 --lesion-fraction 0.5 --seed 0" in readme
    for rel, digest in _read_checksums(SAMPLE_DATA / "checksums.sha256").items():
        assert f"{digest}  {rel}" in readme
    datalist = json.loads((SAMPLE_DATA / "datalist.json").read_text())
    assert datalist["generator"] == {**BUNDLED_ARGS, "shape": [48, 48, 48], "spacing_mm": [5.0, 5.0, 5.0]}


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="subjects"):
        make_sample_data(tmp_path, subjects=0, progress=False)
    with pytest.raises(ConfigError, match="lesion_fraction"):
        make_sample_data(tmp_path, lesion_fraction=2.0, progress=False)
    assert not any(tmp_path.iterdir())  # nothing written before the arguments are checked
