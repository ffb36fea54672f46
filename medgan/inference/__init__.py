"""medgan.inference."""
