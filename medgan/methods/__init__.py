"""medgan.methods."""
