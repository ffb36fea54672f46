"""Datalists: decathlon JSON round trips, path resolution rules, validation errors, unpaired pairing."""

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medgan.data.datalist import load_datalist, make_unpaired, save_datalist
from medgan.errors import ConfigError, InputError


@pytest.fixture
def dataset_dir(tmp_path):
    """A data folder with two subjects' files (contents do not matter to the datalist)."""
    root = tmp_path / "data"
    for subject in ("subject_000", "subject_001"):
        (root / subject).mkdir(parents=True)
        for name in ("mri", "ct", "labels"):
            (root / subject / f"{name}.nii.gz").write_bytes(b"x")
    return root


def _write(path, content):
    path.write_text(json.dumps(content))
    return path


def _entry(subject, **extra):
    return {"subject": subject, "mri": f"{subject}/mri.nii.gz", "ct": f"{subject}/ct.nii.gz", "label": 0, **extra}


def test_relative_paths_resolve_against_the_datalist_folder(dataset_dir):
    datalist = _write(dataset_dir / "datalist.json", {"training": [_entry("subject_000")], "test": []})
    [entry] = load_datalist(datalist, "training", require_keys=("mri", "ct"))
    assert entry["mri"] == str(dataset_dir / "subject_000" / "mri.nii.gz")
    assert entry["subject"] == "subject_000"  # a subject id that names a folder stays an id
    assert entry["label"] == 0
    assert load_datalist(datalist, "test") == []


def test_save_then_load_round_trips_and_stores_relative_paths(dataset_dir, tmp_path):
    outside = tmp_path / "elsewhere.nii.gz"
    outside.write_bytes(b"x")
    entries = [
        {"subject": "subject_000", "mri": str(dataset_dir / "subject_000" / "mri.nii.gz"), "label": 1},
        {"subject": "subject_001", "mri": str(outside), "label": 0},
    ]
    path = save_datalist({"training": entries, "validation": []}, dataset_dir / "datalist.json")
    stored = json.loads(path.read_text())
    assert stored["training"][0]["mri"] == "subject_000/mri.nii.gz"
    assert stored["training"][1]["mri"] == str(outside)  # outside the folder: kept absolute
    assert load_datalist(path, "training") == entries


def test_missing_file_names_datalist_index_key_and_path(dataset_dir):
    entries = [_entry("subject_000"), _entry("subject_001", lesion_mask="subject_001/lesion_mask.nii.gz")]
    datalist = _write(dataset_dir / "datalist.json", {"training": entries})
    with pytest.raises(InputError) as err:
        load_datalist(datalist, "training")
    message = str(err.value)
    assert str(datalist) in message and "training[1].lesion_mask" in message
    assert str(dataset_dir / "subject_001" / "lesion_mask.nii.gz") in message
    # without file checks, a missing path inside the folder is accepted
    assert len(load_datalist(datalist, "training", check_files=False)) == 2


def test_required_keys_and_unknown_split(dataset_dir):
    entry = {"subject": "subject_000", "mri": "subject_000/mri.nii.gz"}
    datalist = _write(dataset_dir / "datalist.json", {"training": [entry], "validation": []})
    with pytest.raises(InputError, match=r"training\[0\] lacks required key\(s\) \['ct'\]"):
        load_datalist(datalist, "training", require_keys=("mri", "ct"))
    with pytest.raises(ConfigError, match="no split 'testing'") as err:
        load_datalist(datalist, "testing")
    assert "training, validation" in str(err.value)
    with pytest.raises(InputError, match="does not exist"):
        load_datalist(dataset_dir / "nope.json")


def test_paths_escaping_the_folder_must_exist_and_absolute_paths_work(dataset_dir, tmp_path):
    clinical = tmp_path / "clinical" / "ct.nii.gz"
    clinical.parent.mkdir()
    clinical.write_bytes(b"x")
    lists = dataset_dir / "lists"
    lists.mkdir()
    good = {"mri": "../subject_000/mri.nii.gz", "ct": "../../clinical/ct.nii.gz", "labels": str(clinical)}
    datalist = _write(lists / "datalist.json", {"training": [good]})
    [entry] = load_datalist(datalist, check_files=False)
    assert entry["ct"] == str(clinical) and entry["labels"] == str(clinical)

    bad = _write(lists / "bad.json", {"training": [{"mri": "../subject_000/missing.nii.gz"}]})
    with pytest.raises(InputError, match="climbs out of the datalist folder"):
        load_datalist(bad, check_files=False)


def test_make_unpaired_never_pairs_a_subject_with_itself_and_is_seeded():
    entries = [{"subject": f"s{i}", "mri": f"mri{i}", "ct": f"ct{i}"} for i in range(7)]
    pairs = make_unpaired(entries, "mri", "ct", seed=3)
    assert sorted(p["mri"] for p in pairs) == sorted(e["mri"] for e in entries)
    assert sorted(p["ct"] for p in pairs) == sorted(e["ct"] for e in entries)
    assert all(p["source_subject"] != p["target_subject"] for p in pairs)
    assert all(p["mri"][3:] != p["ct"][2:] for p in pairs)
    assert make_unpaired(entries, "mri", "ct", seed=3) == pairs
    assert make_unpaired(entries, "mri", "ct", seed=4) != pairs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=14), st.integers(0, 2**16))
def test_make_unpaired_avoids_self_pairs_whenever_possible(subject_ids, seed):
    entries = [{"subject": f"s{sid}", "mri": i, "ct": i} for i, sid in enumerate(subject_ids)]
    if max(Counter(subject_ids).values()) > len(entries) // 2:
        with pytest.raises(ConfigError, match="more than half"):
            make_unpaired(entries, "mri", "ct", seed)
        return
    pairs = make_unpaired(entries, "mri", "ct", seed)
    assert all(p["source_subject"] != p["target_subject"] for p in pairs)
    assert sorted(p["ct"] for p in pairs) == list(range(len(entries)))


def test_make_unpaired_needs_the_keys():
    with pytest.raises(ConfigError, match="entry 1 has no 'ct'"):
        make_unpaired([{"mri": 1, "ct": 1}, {"mri": 2}], "mri", "ct", seed=0)
