"""medgan's exception types.

Every error a user can cause (a bad file, a bad config key, an output path that
escapes its root) is raised as a :class:`MedganError` whose message names the
thing at fault, the problem and the fix. The CLI prints that message without a
traceback and exits non-zero; library users can catch the specific subclass.
"""

from __future__ import annotations

from pathlib import Path


class MedganError(Exception):
    """Base of every medgan error: what went wrong, where, and how to fix it."""

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.path}: {self.problem}" if self.path is not None else self.problem
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class InputError(MedganError):
    """An input image file or series is unreadable, malformed or not what was expected."""


class DicomSeriesError(InputError):
    """A DICOM series folder cannot be assembled into one consistent 3D volume."""


class ConfigError(MedganError):
    """A config file or override has an unknown key, a wrong type or a bad value."""


class OutputPathError(MedganError):
    """An output path would land outside its output root or cannot be written."""


class TrainingError(MedganError):
    """Training cannot go on (non-finite losses that do not recover, a broken checkpoint...)."""


def medgan_error_in(error: BaseException) -> MedganError | None:
    """The MedganError behind ``error``, if any.

    MONAI wraps exceptions raised inside transforms (and DataLoader workers) in a
    ``RuntimeError``; following ``__cause__`` / ``__context__`` recovers medgan's own
    message (which file, what is wrong, the fix) so it reaches the user unchanged.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, MedganError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
