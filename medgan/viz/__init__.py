"""medgan.viz: slice montages of 3D volumes, a leaf any layer may use.

It imports nothing of medgan but :mod:`medgan.errors`, so drawing a picture never
pulls in readers, networks or training.
"""

from medgan.viz.montage import display_slice, montage_layout, save_montage

__all__ = ["display_slice", "montage_layout", "save_montage"]
