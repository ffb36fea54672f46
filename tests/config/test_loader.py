"""Config loading: strict keys, typed values, overrides, output-path safety."""

from pathlib import Path

import pytest
import yaml

from medgan.config import (
    StrictModel,
    apply_overrides,
    config_sha256,
    load_config,
    resolve_output_path,
    save_resolved_config,
)
from medgan.errors import ConfigError, OutputPathError


class TrainSection(StrictModel):
    steps: int = 10
    lr: float = 1e-3
    patch_size: list[int] = [32, 32, 32]


class DemoConfig(StrictModel):
    method: str
    train: TrainSection = TrainSection()


def write_yaml(path: Path, mapping: dict) -> Path:
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_loads_and_fills_defaults(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {"method": "pix2pix"}), DemoConfig)
    assert cfg.method == "pix2pix"
    assert cfg.train.steps == 10


def test_overrides_are_typed_and_nested(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"method": "pix2pix", "train": {"steps": 5}})
    cfg = load_config(path, DemoConfig, ["train.steps=20", "train.patch_size=[16,16,8]", "method=cyclegan"])
    assert cfg.train.steps == 20
    assert cfg.train.patch_size == [16, 16, 8]
    assert cfg.method == "cyclegan"


def test_unknown_key_names_key_and_file(tmp_path):
    path = write_yaml(tmp_path / "bad.yaml", {"method": "pix2pix", "train": {"stepz": 5}})
    with pytest.raises(ConfigError) as info:
        load_config(path, DemoConfig)
    assert "train.stepz" in str(info.value)
    assert "bad.yaml" in str(info.value)


def test_wrong_type_names_key(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", {"method": "pix2pix"})
    with pytest.raises(ConfigError, match="train.steps"):
        load_config(path, DemoConfig, ["train.steps=many"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", DemoConfig)
    broken = tmp_path / "broken.yaml"
    broken.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken, DemoConfig)


def test_yaml_tags_that_run_code_are_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("method: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError):
        load_config(evil, DemoConfig)


def test_override_errors():
    with pytest.raises(ConfigError, match="no '='"):
        apply_overrides({}, ["train.steps"])
    with pytest.raises(ConfigError, match="is a value"):
        apply_overrides({"method": "x"}, ["method.name=y"])


def test_resolved_config_round_trips_and_hash_is_stable(tmp_path):
    cfg = load_config(write_yaml(tmp_path / "c.yaml", {"method": "pix2pix"}), DemoConfig, ["train.lr=0.5"])
    saved = save_resolved_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(saved, DemoConfig)
    assert again == cfg
    assert config_sha256(again) == config_sha256(cfg)
    assert config_sha256(load_config(saved, DemoConfig, ["train.lr=0.25"])) != config_sha256(cfg)


def test_output_paths_stay_inside_root(tmp_path):
    assert resolve_output_path(tmp_path, "a/b.nii.gz") == (tmp_path / "a" / "b.nii.gz").resolve()
    with pytest.raises(OutputPathError, match="escapes"):
        resolve_output_path(tmp_path, "../outside.nii.gz")
    with pytest.raises(OutputPathError, match="absolute"):
        resolve_output_path(tmp_path, "/etc/passwd")
