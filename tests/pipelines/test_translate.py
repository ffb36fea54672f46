"""The translate job end to end, with a run trained for 2 steps by the real engine."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
import yaml
from click.testing import CliRunner
from monai.transforms import Orientation

from medgan.errors import ConfigError
from medgan.inference import InferencePlan
from medgan.io import read_volume, sha256_file, sha256_path, write_dicom_series
from medgan.jobs import read_manifest, summarize_job
from medgan.training import load_trained_run
from pipelines.cli import cli
from pipelines.train import run_training
from pipelines.translate import JOB_SETTINGS_FILE, expand_inputs, run_translate

HU_MIN, HU_MAX = -1024.0, 3071.0
# Not RAS (x flipped, y and z swapped), anisotropic voxels, left-handed, off-origin.
AWKWARD_AFFINE = np.array(
    [[-0.9, 0.0, 0.0, 12.5], [0.0, 0.0, 2.5, -20.0], [0.0, -1.3, 0.0, 31.0], [0.0, 0.0, 0.0, 1.0]]
)


def head_like(shape: tuple[int, int, int], seed: int, inside: float, shell: float, outside: float) -> np.ndarray:
    """A noisy ellipsoid 'head' with a shell, on a background (values per tissue)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, size) for size in shape], indexing="ij")
    radius = np.sqrt(sum(axis**2 for axis in grid))
    volume = np.select([radius < 0.6, radius < 0.8], [inside, shell], outside)
    return (volume + np.abs(rng.normal(0, 5, shape))).astype(np.float32)


def save_nifti(path: Path, voxels: np.ndarray, affine: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(voxels, affine), str(path))
    return path


def mri_file(path: Path, shape=(20, 18, 22), seed: int = 0, affine=None) -> Path:
    return save_nifti(
        path, head_like(shape, seed, 600.0, 80.0, 5.0), np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pix2pix run trained for 2 steps on 3 tiny paired subjects by the real engine."""
    root = tmp_path_factory.mktemp("translate_run")
    entries = []
    for index in range(3):
        folder = root / "data" / f"subject_{index:03d}"
        mri_file(folder / "mri.nii.gz", shape=(24, 24, 24), seed=index)
        save_nifti(
            folder / "ct.nii.gz", head_like((24,) * 3, index, 40.0, 1200.0, -1000.0), np.diag([2.0, 2.0, 2.0, 1])
        )
        entries.append({"subject": folder.name, "mri": f"{folder.name}/mri.nii.gz", "ct": f"{folder.name}/ct.nii.gz"})
    datalist = root / "data" / "datalist.json"
    datalist.write_text(json.dumps({"training": entries[:2], "validation": entries[2:], "test": entries[2:]}))
    config = {
        "method": "pix2pix",
        "data": {
            "datalist": str(datalist),
            "patch_size": [16, 16, 16],
            "samples_per_volume": 2,
            "labels_key": None,
            "validation_volumes": 0,
            "cache": "none",
        },
        "model": {
            "generator": {"name": "unet3d", "channels": [4, 8], "strides": [2], "num_res_units": 0},
            "discriminator": {"name": "patchgan3d", "channels": 4, "num_layers_d": 2},
        },
        "train": {
            "steps": 2,
            "batch_size": 2,
            "device": "cpu",
            "precision": "fp32",
            "checkpoint_every": 2,
            "sample_every": 0,
            "validate_every": 0,
            "lr_schedule": "constant",
        },
        "inference": {"roi_size": [16, 16, 16], "sw_batch_size": 2, "overlap": 0.25},
    }
    config_path = root / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return run_training(config_path, run_dir=root / "run", quiet=True)


def test_nifti_outputs_keep_input_geometry_hu_and_provenance(trained_run: Path, tmp_path: Path) -> None:
    awkward = save_nifti(
        tmp_path / "in" / "awkward scan.nii.gz", head_like((23, 30, 17), 1, 600.0, 80.0, 5.0), AWKWARD_AFFINE
    )
    iso = mri_file(tmp_path / "in" / "iso.nii", seed=2)
    out_dir = tmp_path / "out"
    summary = run_translate(trained_run, [awkward, iso], out_dir, device="cpu", progress=False)
    assert (summary.n_done, summary.n_failed, summary.exit_code) == (2, 0, 0)

    for source, name in ((awkward, "awkward_scan_synth_ct.nii.gz"), (iso, "iso_synth_ct.nii.gz")):
        source_image, output_image = nib.load(str(source)), nib.load(str(out_dir / name))
        assert output_image.shape == source_image.shape
        np.testing.assert_array_equal(output_image.affine, source_image.affine)
        hu = np.asarray(output_image.dataobj)
        # CT is stored as int16 HU, as scanners and the sample data store it
        assert hu.dtype == np.int16 and hu.min() >= HU_MIN and hu.max() <= HU_MAX and hu.std() > 1.0

    run = load_trained_run(trained_run)
    records = {record.key: record for record in read_manifest(out_dir / "manifest.jsonl")}
    record = records[str(awkward.absolute())]
    assert record.status == "done" and record.output == "awkward_scan_synth_ct.nii.gz"
    assert record.input_sha256 == sha256_file(awkward)
    assert record.output_sha256 == sha256_file(out_dir / record.output)
    assert (record.checkpoint_sha256, record.config_sha256) == (run.checkpoint_sha256, run.config_sha256)
    assert record.error is None and record.seconds > 0


def test_rerun_skips_and_overwrite_redoes(trained_run: Path, tmp_path: Path) -> None:
    inputs = [mri_file(tmp_path / f"s{index}.nii.gz", seed=index) for index in range(2)]
    out_dir = tmp_path / "out"
    run_translate(trained_run, inputs, out_dir, device="cpu", progress=False)
    written = {path: path.stat().st_mtime_ns for path in out_dir.glob("*.nii.gz")}

    again = run_translate(trained_run, inputs, out_dir, device="cpu", progress=False)
    assert (again.n_done, again.n_skipped, again.exit_code) == (0, 2, 0)
    assert {path: path.stat().st_mtime_ns for path in out_dir.glob("*.nii.gz")} == written

    redone = run_translate(trained_run, inputs, out_dir, device="cpu", progress=False, overwrite=True)
    assert (redone.n_done, redone.n_skipped) == (2, 0)
    assert all(path.stat().st_mtime_ns != mtime for path, mtime in written.items())
    assert [record.status for record in read_manifest(out_dir / "manifest.jsonl")] == ["done"] * 2 + ["skipped"] * 2 + [
        "done"
    ] * 2


def test_bad_inputs_are_reported_and_the_job_goes_on(trained_run: Path, tmp_path: Path) -> None:
    good = mri_file(tmp_path / "good.nii.gz")
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"this is not a NIfTI file")
    empty = save_nifti(tmp_path / "empty.nii.gz", np.zeros((16, 16, 16), np.float32), np.eye(4))
    missing = tmp_path / "missing.nii.gz"
    summary = run_translate(
        trained_run, [corrupt, good, missing, empty], tmp_path / "out", device="cpu", progress=False
    )
    assert (summary.n_done, summary.n_failed, summary.exit_code) == (1, 3, 1)
    errors = {Path(failure.input).name: failure.error for failure in summary.failures}
    assert set(errors) == {"corrupt.nii.gz", "missing.nii.gz", "empty.nii.gz"}
    assert all(str(tmp_path) in error for error in errors.values())  # each message names its file
    assert (tmp_path / "out" / "good_synth_ct.nii.gz").is_file()
    assert not (tmp_path / "out" / "corrupt_synth_ct.nii.gz").exists()
    statuses = {Path(r.input).name: (r.status, r.error) for r in read_manifest(tmp_path / "out" / "manifest.jsonl")}
    assert statuses["good.nii.gz"] == ("done", None)
    assert statuses["missing.nii.gz"][0] == "failed" and "does not exist" in statuses["missing.nii.gz"][1]


KILLED_ON_SECOND_ITEM = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from medgan.inference.volume import VolumeTranslator
    from pipelines.translate import run_translate

    translate_file = VolumeTranslator.__call__
    calls = []
    def dies_on_second_item(self, input_path):
        calls.append(input_path)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # the machine goes away mid-job
        return translate_file(self, input_path)
    VolumeTranslator.__call__ = dies_on_second_item
    run_translate(sys.argv[1], sys.argv[3:], sys.argv[2], device="cpu", progress=False)
    """
)


def test_killed_job_resumes_with_the_remaining_items(trained_run: Path, tmp_path: Path) -> None:
    inputs = [mri_file(tmp_path / "in" / f"case{index}.nii.gz", seed=index) for index in range(3)]
    out_dir = tmp_path / "out"
    child = subprocess.run(
        [sys.executable, "-c", KILLED_ON_SECOND_ITEM, str(trained_run), str(out_dir), *map(str, inputs)],
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    assert sorted(path.name for path in out_dir.glob("case*")) == ["case0_synth_ct.nii.gz"]

    summary = run_translate(trained_run, inputs, out_dir, device="cpu", progress=False)
    assert (summary.n_skipped, summary.n_done, summary.n_failed) == (1, 2, 0)
    assert [record.status for record in summary.records] == ["skipped", "done", "done"]
    assert sorted(path.name for path in out_dir.glob("case*")) == [f"case{i}_synth_ct.nii.gz" for i in range(3)]


def test_shards_partition_the_inputs(trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = [mri_file(tmp_path / "in" / f"v{index}.nii.gz", shape=(16, 16, 16), seed=index) for index in range(5)]
    out_dir = tmp_path / "out"
    keys_per_shard = []
    for index in range(3):
        summary = run_translate(trained_run, inputs, out_dir, shard=f"{index}/3", device="cpu", progress=False)
        assert summary.manifest_path.name == f"manifest-shard-{index}-of-3.jsonl"
        keys_per_shard.append({record.key for record in read_manifest(summary.manifest_path)})
    assert sum(len(keys) for keys in keys_per_shard) == 5
    assert set().union(*keys_per_shard) == {str(path.absolute()) for path in inputs}
    merged = summarize_job(out_dir)
    assert (merged.n_done, merged.n_failed) == (5, 0)

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    summary = run_translate(trained_run, inputs, out_dir, device="cpu", progress=False)
    assert summary.manifest_path.name == "manifest-shard-1-of-2.jsonl"
    assert (summary.n_skipped, summary.n_done) == (2, 0)  # rank 1 of 2 takes items 1 and 3, already done


@pytest.mark.parametrize("shard", ["3/3", "1/0", "x/2", "-1/2"])
def test_bad_shard_is_a_config_error(shard: str, trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shard"):
        run_translate(trained_run, [tmp_path / "a.nii.gz"], tmp_path / "out", shard=shard, progress=False)


def test_bad_format_is_a_config_error(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="format"):
        run_translate(
            trained_run,
            [mri_file(tmp_path / "a.nii.gz")],
            tmp_path / "out",
            output_format="png",
            device="cpu",
            progress=False,
        )


def test_dicom_series_in_and_out_keep_geometry(trained_run: Path, tmp_path: Path) -> None:
    source_mri = torch.from_numpy(head_like((18, 20, 12), 4, 600.0, 80.0, 5.0))
    affine = np.array([[0.0, 0.0, 2.0, -10.0], [-1.1, 0.0, 0.0, 40.0], [0.0, -1.2, 0.0, 5.0], [0, 0, 0, 1.0]])
    dicom_in = write_dicom_series(source_mri, tmp_path / "MR series 7", modality="MR", affine=affine)
    awkward = save_nifti(tmp_path / "awkward.nii.gz", head_like((23, 30, 17), 1, 600.0, 80.0, 5.0), AWKWARD_AFFINE)
    as_read = read_volume(dicom_in)

    nifti_out = run_translate(trained_run, [dicom_in], tmp_path / "nifti_out", device="cpu", progress=False)
    assert nifti_out.exit_code == 0
    output_image = nib.load(str(tmp_path / "nifti_out" / "MR_series_7_synth_ct.nii.gz"))
    assert output_image.shape == tuple(as_read.shape[1:])
    np.testing.assert_allclose(output_image.affine, as_read.affine.numpy(), atol=1e-4)

    dicom_out = run_translate(
        trained_run, [dicom_in, awkward], tmp_path / "dicom_out", output_format="dicom", device="cpu", progress=False
    )
    assert (dicom_out.n_done, dicom_out.exit_code) == (2, 0)
    record = next(r for r in dicom_out.records if r.input == str(dicom_in.absolute()))
    assert record.input_sha256 == sha256_path(dicom_in)
    assert record.output_sha256 == sha256_path(tmp_path / "dicom_out" / record.output)
    ct_back = read_volume(tmp_path / "dicom_out" / "MR_series_7_synth_ct")
    assert ct_back.shape == as_read.shape
    np.testing.assert_allclose(ct_back.affine.numpy(), as_read.affine.numpy(), atol=1e-3)
    assert float(ct_back.min()) >= HU_MIN - 1 and float(ct_back.max()) <= HU_MAX + 1

    # NIfTI in, DICOM out: the same world grid (compared in RAS; DICOM may store k reversed)
    ras = Orientation(axcodes="RAS")
    awkward_back, awkward_in = ras(read_volume(tmp_path / "dicom_out" / "awkward_synth_ct")), ras(read_volume(awkward))
    assert awkward_back.shape == awkward_in.shape
    np.testing.assert_allclose(awkward_back.affine.numpy(), awkward_in.affine.numpy(), atol=1e-3)

    header = pydicom.dcmread(next((tmp_path / "dicom_out" / "MR_series_7_synth_ct").glob("*.dcm")))
    assert header.Modality == "CT" and header.PatientIdentityRemoved == "YES"
    assert header.SeriesInstanceUID != pydicom.dcmread(next(dicom_in.glob("*.dcm"))).SeriesInstanceUID


def test_datalists_expand_to_their_source_images(trained_run: Path, tmp_path: Path) -> None:
    datalist = trained_run.parent / "data" / "datalist.json"
    everything = expand_inputs([datalist], source_key="mri")
    assert [path.parent.name for path in everything] == ["subject_000", "subject_001", "subject_002"]
    summary = run_translate(trained_run, [datalist], tmp_path / "out", split="validation", device="cpu", progress=False)
    assert summary.n_done == 1
    # the stem "mri" is shared by every entry, so names take the parent folder, also for one split
    assert [path.name for path in (tmp_path / "out").glob("*.nii.gz")] == ["subject_002_mri_synth_ct.nii.gz"]


def test_job_settings_record_the_run_beside_the_outputs(trained_run, tmp_path):
    source = next((trained_run.parent / "data").rglob("mri.nii.gz"))
    run_translate(trained_run, [source], tmp_path / "out", device="cpu", progress=False)
    settings = yaml.safe_load((tmp_path / "out" / JOB_SETTINGS_FILE).read_text())
    assert settings["run_dir"] == str(trained_run.resolve())
    assert settings["run_config"]["method"] == "pix2pix"
    assert len(settings["checkpoint_sha256"]) == 64


def ct_file(path: Path, shape=(20, 18, 22)) -> Path:
    return save_nifti(path, head_like(shape, 0, 40.0, 1200.0, -1000.0), np.diag([2.0, 2.0, 2.0, 1.0]))


def test_run_records_its_training_data_profile(trained_run: Path) -> None:
    run = load_trained_run(trained_run)
    assert run.profile is not None and run.profile.source.key == "mri" and run.profile.source.n_entries == 2
    assert run.config.data.spacing is None and run.trained_spacing == pytest.approx((2.0, 2.0, 2.0))
    assert run.profile.source.min_fov_mm == pytest.approx((48.0, 48.0, 48.0))


def test_wrong_modality_fails_its_item_and_doubts_land_in_the_manifest(trained_run: Path, tmp_path: Path) -> None:
    ct = ct_file(tmp_path / "in" / "head_ct.nii.gz")
    stripped = mri_file(tmp_path / "in" / "stripped.nii.gz", shape=(12, 12, 12))  # 24 mm FOV vs 48 mm trained
    good = mri_file(tmp_path / "in" / "good.nii.gz")
    summary = run_translate(trained_run, [ct, stripped, good], tmp_path / "out", device="cpu", progress=False)
    assert (summary.n_done, summary.n_failed, summary.exit_code) == (2, 1, 1)
    (failure,) = summary.failures
    assert failure.input == str(ct.absolute()) and str(ct.absolute()) in failure.error
    assert "look like CT in HU, not MRI" in failure.error
    assert not (tmp_path / "out" / "head_ct_synth_ct.nii.gz").exists()

    records = {Path(record.input).name: record for record in read_manifest(tmp_path / "out" / "manifest.jsonl")}
    assert records["stripped.nii.gz"].status == "done"
    (warning,) = records["stripped.nii.gz"].warnings
    assert "field of view much smaller" in warning
    assert records["good.nii.gz"].warnings is None
    assert records["good.nii.gz"].notes == ["native spacing 2 x 2 x 2 mm is the trained spacing: not resampled"]

    again = run_translate(trained_run, [stripped], tmp_path / "out", device="cpu", progress=False)
    assert again.n_skipped == 1 and again.records[0].warnings == [warning]  # a skipped item keeps its warnings


@pytest.fixture
def run_trained_at_5mm(trained_run: Path, tmp_path: Path) -> Path:
    """The tiny run, its training data profile saying the images had 5 mm voxels (config spacing: native)."""
    run_dir = shutil.copytree(trained_run, tmp_path / "run_5mm")
    profile = json.loads((run_dir / "data_profile.json").read_text())
    profile["source"]["median_spacing"] = [5.0, 5.0, 5.0]
    (run_dir / "data_profile.json").write_text(json.dumps(profile))
    return run_dir


def test_inputs_are_translated_at_the_trained_spacing_and_come_back_on_their_grid(
    run_trained_at_5mm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen_shapes = []
    translate = InferencePlan.translate

    def recording(self, source_net, translator, **options):
        seen_shapes.append(tuple(source_net.shape[-3:]))
        return translate(self, source_net, translator, **options)

    monkeypatch.setattr(InferencePlan, "translate", recording)
    fine = mri_file(tmp_path / "fine.nii.gz", shape=(20, 18, 22), affine=np.diag([2.5, 2.5, 2.5, 1.0]))
    with caplog.at_level(logging.INFO, logger="medgan.jobs.runner"):
        summary = run_translate(run_trained_at_5mm, [fine], tmp_path / "out", device="cpu", progress=False)
    assert summary.exit_code == 0
    # 50 x 45 x 55 mm at 5 mm is 10 x 9 x 11 voxels (padded to 16); natively it would be 20 x 18 x 22 (32)
    assert seen_shapes == [(16, 16, 16)]
    note = "resampled 2.5 x 2.5 x 2.5 mm -> 5 x 5 x 5 mm (trained spacing) and back"
    assert summary.records[0].notes == [note] and note in caplog.text
    source_image, output_image = nib.load(str(fine)), nib.load(str(tmp_path / "out" / "fine_synth_ct.nii.gz"))
    assert output_image.shape == source_image.shape
    np.testing.assert_array_equal(output_image.affine, source_image.affine)
    settings = yaml.safe_load((tmp_path / "out" / JOB_SETTINGS_FILE).read_text())
    assert settings["trained_spacing"] == [5.0, 5.0, 5.0]


def test_translate_set_accepts_inference_keys_only(trained_run: Path, tmp_path: Path) -> None:
    source = mri_file(tmp_path / "in.nii.gz")
    base = ["translate", "--run", str(trained_run), str(source), "--device", "cpu", "--quiet", "--out"]
    refused = CliRunner().invoke(cli, [*base, str(tmp_path / "refused"), "--set", "train.steps=3"])
    assert refused.exit_code == 2, refused.output  # a usage error, no traceback
    assert "translate may only change inference.* keys, not 'train.steps'" in refused.output
    assert not (tmp_path / "refused").exists()  # refused before anything ran

    done = CliRunner().invoke(
        cli, [*base, str(tmp_path / "out"), "--set", "inference.roi_size=[16,16,16]", "--set", "inference.overlap=0.5"]
    )
    assert done.exit_code == 0, done.output
    settings = yaml.safe_load((tmp_path / "out" / JOB_SETTINGS_FILE).read_text())
    assert settings["inference_overrides"] == ["inference.roi_size=[16,16,16]", "inference.overlap=0.5"]
    assert settings["run_config"]["inference"]["overlap"] == 0.5
    run = load_trained_run(trained_run)
    assert settings["config_sha256"] != run.config_sha256 == settings["run_config_sha256"]
    # outputs made with other inference settings are not "already done"
    plain = run_translate(trained_run, [source], tmp_path / "out", device="cpu", progress=False)
    assert (plain.n_done, plain.n_skipped) == (1, 0)

    with pytest.raises(ConfigError, match="inference.overlap"):
        run_translate(trained_run, [source], tmp_path / "bad", overrides=["inference.overlap=2"], progress=False)


def test_nan_voxels_fail_with_a_cli_fix_or_are_filled_on_request(trained_run: Path, tmp_path: Path) -> None:
    voxels = head_like((20, 18, 22), 0, 600.0, 80.0, 5.0)
    voxels[:3] = np.nan  # NaN outside the field of view, as some registration tools write
    source = save_nifti(tmp_path / "registered.nii.gz", voxels, np.diag([2.0, 2.0, 2.0, 1.0]))
    base = ["translate", "--run", str(trained_run), str(source), "--device", "cpu", "--quiet", "--out"]

    refused = CliRunner().invoke(cli, [*base, str(tmp_path / "refused")])
    assert refused.exit_code == 1, refused.output
    assert f"{3 * 18 * 22} of {voxels.size} voxels are not finite" in refused.output
    assert "medgan translate --nan-fill VALUE" in refused.output  # a fix a CLI user can apply

    filled = CliRunner().invoke(cli, [*base, str(tmp_path / "out"), "--nan-fill", "0"])
    assert filled.exit_code == 0, filled.output
    hu = np.asarray(nib.load(str(tmp_path / "out" / "registered_synth_ct.nii.gz")).dataobj)
    assert hu.shape == voxels.shape and np.isfinite(hu).all()
    (record,) = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert record.warnings == [f"replaced {3 * 18 * 22} non-finite voxels ({3 * 18 * 22} NaN, 0 Inf) with 0.0"]
    settings = yaml.safe_load((tmp_path / "out" / JOB_SETTINGS_FILE).read_text())
    assert settings["nan_fill"] == 0.0

    # the same fill is done; another fill (or none) makes other outputs, so the item is redone
    same = run_translate(trained_run, [source], tmp_path / "out", device="cpu", progress=False, nan_fill=0.0)
    other = run_translate(trained_run, [source], tmp_path / "out", device="cpu", progress=False, nan_fill=5.0)
    assert (same.n_skipped, other.n_done) == (1, 1)
