"""medgan.evaluation."""
