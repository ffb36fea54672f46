"""The CLI: help, version, error messages without tracebacks, exit codes."""

import subprocess
import sys

import numpy as np
import pytest

from medgan import __version__
from medgan.io import write_nifti
from pipelines.cli import main, parse_shape


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


def test_medgan_error_prints_message_without_traceback(tmp_path, capsys):
    code, _, err = run_cli(["sample-data", str(tmp_path / "out"), "--subjects", "0"], capsys)
    assert code == 1
    assert "error:" in err
    assert "Traceback" not in err


def test_python_dash_m_medgan_forwards_to_cli():
    done = subprocess.run([sys.executable, "-m", "medgan", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert __version__ in done.stdout


@pytest.mark.parametrize(("text", "shape"), [("64", (64, 64, 64)), ("32,32,16", (32, 32, 16)), ("8x9x10", (8, 9, 10))])
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


def test_medgan_error_wrapped_by_monai_is_unwrapped(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("method: pix2pix\ndata:\n  datalist: missing/datalist.json\n")
    code, _, err = run_cli(["train", str(config), "--dry-run"], capsys)
    assert code == 1
    assert "datalist" in err
    assert "Traceback" not in err
