"""Image geometry of the phantom: the NIfTI affine and the supersampled render grid.

Why supersample: a scanner voxel averages every tissue inside it (partial volume), so
edges between tissues carry intermediate values. The phantom paints labels on a grid
``factor`` times finer along each axis and averages each ``factor**3`` block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PhantomGrid:
    """Output shape, voxel spacing (mm) and supersampling factor of one rendered volume."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    factor: int = 2

    @property
    def affine(self) -> np.ndarray:
        """RAS voxel -> world (mm) matrix with the field of view centred on the isocentre."""
        affine = np.diag([*self.spacing_mm, 1.0])
        affine[:3, 3] = [-(n - 1) / 2.0 * s for n, s in zip(self.shape, self.spacing_mm, strict=True)]
        return affine

    @property
    def fine_shape(self) -> tuple[int, int, int]:
        """Shape of the supersampled render grid."""
        return tuple(n * self.factor for n in self.shape)  # type: ignore[return-value]

    def fine_axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates (mm) of the sub-voxel centres along x (R), y (A) and z (S)."""
        axes = []
        offsets = (np.arange(self.factor) + 0.5) / self.factor - 0.5
        for n, spacing, origin in zip(self.shape, self.spacing_mm, self.affine[:3, 3], strict=True):
            voxel_index = (np.arange(n)[:, None] + offsets[None, :]).reshape(-1)
            axes.append((origin + spacing * voxel_index).astype(np.float32))
        return tuple(axes)  # type: ignore[return-value]

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates (mm) of the output voxel centres along each axis."""
        return tuple(  # type: ignore[return-value]
            (origin + spacing * np.arange(n)).astype(np.float32)
            for n, spacing, origin in zip(self.shape, self.spacing_mm, self.affine[:3, 3], strict=True)
        )

    def _blocks(self, fine: np.ndarray) -> np.ndarray:
        f = self.factor
        nx, ny, nz = self.shape
        return fine.reshape(nx, f, ny, f, nz, f)

    def block_mean(self, fine: np.ndarray) -> np.ndarray:
        """Average each ``factor**3`` block of a fine-grid volume (the partial-volume effect)."""
        return self._blocks(fine.astype(np.float32, copy=False)).mean(axis=(1, 3, 5))

    def block_majority(self, fine_labels: np.ndarray) -> np.ndarray:
        """Most frequent label in each block (ties go to the higher label id, e.g. lesion over WM)."""
        num_labels = int(fine_labels.max()) + 1
        per_block = self._blocks(fine_labels).transpose(0, 2, 4, 1, 3, 5).reshape(-1, self.factor**3)
        block_index = np.arange(per_block.shape[0], dtype=np.int64)[:, None]
        counts = np.bincount((block_index * num_labels + per_block).ravel(), minlength=per_block.shape[0] * num_labels)
        counts = counts.reshape(-1, num_labels)
        # argmax returns the first maximum; searching the reversed columns prefers higher ids
        majority = num_labels - 1 - np.argmax(counts[:, ::-1], axis=1)
        return majority.astype(np.uint8).reshape(self.shape)
