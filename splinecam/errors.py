"""Every exception splinecam raises on purpose, in one place.

- :class:`UnsupportedModelError`: the model has operations without an exact partition
  (ValueError; the message names every one and its line).
- :class:`StoppedEarly`, the base of the limits :class:`RegionLimitError` and
  :class:`TimeLimitError`: a run ended early; ``.partial`` holds what it finished.
- :class:`TaskError`: a tile or a slice failed on an executor.
- :class:`InvalidPartitionFile`: a file that is not a splinecam partition (ValueError).
- :class:`Unsupported` and :class:`TrainingMode`: raised by op factories (see
  :func:`splinecam.register_op`) for a call they cannot represent; the tracer collects them
  into one :class:`UnsupportedModelError`.
"""

from __future__ import annotations

__all__ = ["InvalidPartitionFile", "RegionLimitError", "StoppedEarly", "TaskError", "TimeLimitError",
           "TrainingMode", "Unsupported", "UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """The model contains operations splinecam cannot represent exactly."""


class StoppedEarly(RuntimeError):
    """A limit ended the run.  ``partial``: a :class:`~splinecam.Partition` of the regions
    finished so far (exact, each with its map and code; they do not tile the slice and
    ``partial.complete`` is False), or None where no partition was being built."""

    partial = None


class RegionLimitError(StoppedEarly):
    """The partition has more regions than the ``max_regions`` limit."""


class TimeLimitError(StoppedEarly):
    """The partition took longer than its ``timeout``."""


class TaskError(RuntimeError):
    """A task (a tile or a slice) failed on an executor; the message names it."""


class InvalidPartitionFile(ValueError):
    """The file is not a valid splinecam partition."""


class Unsupported(Exception):
    """Raised by an op factory for a call it cannot represent exactly; the message says why."""


class TrainingMode(Unsupported):
    """Raised by an op factory for a module whose eval-mode semantics are required."""
