"""medgan.config: YAML configs validated into typed objects."""

from medgan.config.loader import (
    StrictModel,
    apply_overrides,
    config_sha256,
    config_to_yaml,
    load_config,
    resolve_output_path,
    save_resolved_config,
)

__all__ = [
    "StrictModel",
    "apply_overrides",
    "config_sha256",
    "config_to_yaml",
    "load_config",
    "resolve_output_path",
    "save_resolved_config",
]
