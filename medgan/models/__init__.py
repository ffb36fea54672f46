"""medgan.models."""
