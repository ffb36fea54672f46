"""The CLI: help, version, error messages without tracebacks, exit codes."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from medgan import __version__
from medgan.io import write_nifti
from pipelines.cli import cli, main, parse_shape

COMMANDS = sorted(cli.commands)


def run_medgan_process(args, cwd):
    """Run `python -m medgan ARGS` in a fresh interpreter, as a user would; return the finished process.

    In-process, an unexpected exception would propagate out of `main()` instead of being
    printed, so only a real process shows whether a traceback reaches the user.
    """
    env = {name: value for name, value in os.environ.items() if name != "FORCE_COLOR"}  # plain text on stderr
    return subprocess.run(
        [sys.executable, "-m", "medgan", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(done, problem):
    """Exit code 1, exactly one `error:` line naming ``problem``, and no traceback on stderr."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, done.stderr
    assert problem in error_lines[0]


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    captured = capsys.readouterr()
    return stop.value.code, captured.out, captured.err


def test_help_lists_commands(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for command in ("sample-data", "info"):
        assert command in out


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0
    assert __version__ in out


def test_unknown_command_is_usage_error(capsys):
    code, _, err = run_cli(["no-such-command"], capsys)
    assert code == 2
    assert "No such command" in err


def test_info_exit_codes(tmp_path, capsys):
    good = write_nifti(np.ones((8, 8, 6), np.float32), tmp_path / "good.nii.gz", affine=np.eye(4))
    code, out, _ = run_cli(["info", str(good)], capsys)
    assert code == 0
    assert "8 x 8 x 6" in out
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[:50])
    code, out, _ = run_cli(["info", str(good), str(truncated)], capsys)
    assert code == 1
    assert "INVALID" in out
    assert "1 invalid" in out


def test_medgan_error_prints_message_without_traceback(tmp_path):
    done = run_medgan_process(["sample-data", "out", "--subjects", "0"], cwd=tmp_path)
    assert_one_line_error(done, "subjects must be a whole number >= 1, got 0")
    assert not (tmp_path / "out").exists()


def test_python_dash_m_medgan_forwards_to_cli():
    done = subprocess.run([sys.executable, "-m", "medgan", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert __version__ in done.stdout


@pytest.mark.parametrize(("text", "shape"), [("64", (64, 64, 64)), ("32,32,16", (32, 32, 16)), ("8x9x10", (8, 9, 10))])
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


def test_medgan_error_wrapped_by_monai_is_unwrapped(tmp_path):
    (tmp_path / "c.yaml").write_text("method: pix2pix\ndata:\n  datalist: missing/datalist.json\n")
    done = run_medgan_process(["train", "c.yaml", "--dry-run"], cwd=tmp_path)
    assert_one_line_error(done, "missing/datalist.json: datalist file does not exist")


def test_cli_registers_the_main_commands():
    assert COMMANDS
    assert {"train", "translate", "info"} <= set(COMMANDS)


@pytest.fixture
def restore_logging(monkeypatch):
    """The CLI group reconfigures root logging; keep that from outliving the test."""
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    monkeypatch.setattr(logging.root, "level", logging.root.level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"], prog_name="medgan")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: medgan {command} ")


BAD_CONFIG_CASES = [
    # (shipped config, overrides, what the error message must name)
    ("pix2pix_mri2ct", ["model.losses.lambda_cycle=10"], ["lambda_cycle", "pix2pix", "cyclegan"]),
    ("pix2pix_mri2ct", ["data.patch_size=[16,16,16]"], ["patchgan3d", "data.patch_size", "24", "num_layers_d"]),
    ("pix2pix_mri2ct", ["inference.roi_size=[20,20,20]"], ["unet3d", "inference.roi_size", "multiple"]),
    ("pix2pix_mri2ct", ["train.lr={G: 0.001}"], ["train.lr", "D"]),
    ("pix2pix_mri2ct", ["method=bulk_density"], ["model.discriminator", "bulk_density"]),
    ("cyclegan_mri2ct", ["model.losses.lambda_adv=0"], ["lambda_adv", "cyclegan"]),
    ("bulk_density_mri2ct", ["train.lr.D=0.1"], ["train.lr", "bulk_density"]),
    ("pix2pix_mri2ct", ["train.stepz=3"], ["train.stepz"]),
]


@pytest.mark.parametrize(("config", "overrides", "named"), BAD_CONFIG_CASES)
def test_bad_configs_fail_before_training_with_one_message(config, overrides, named, capsys):
    argv = ["train", f"configs/{config}.yaml", "--dry-run"]
    for override in overrides:
        argv += ["--set", override]
    code, out, err = run_cli(argv, capsys)  # a raw exception would propagate out of main() and fail here
    assert code == 1
    assert err.startswith(f"error: configs/{config}.yaml: ")
    assert err.count("error:") == 1
    assert "resolved config" not in out  # nothing ran
    for word in named:
        assert word in err, f"{word!r} missing from: {err}"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [(["lesion_per_case=2"], ["lesion_per_case"]), (["healthy_label=1"], ["healthy_label", "lesion_label"])],
)
def test_enrich_bad_config_is_one_message(overrides, named, capsys):
    argv = ["enrich", "configs/enrich.yaml"]
    for override in overrides:
        argv += ["--set", override]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and err.startswith("error: configs/enrich.yaml: ") and err.count("error:") == 1
    for word in named:
        assert word in err, f"{word!r} missing from: {err}"
