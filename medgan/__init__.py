"""medgan: GANs that turn CT and MRI volumes into better training data."""

__version__ = "0.1.0"
