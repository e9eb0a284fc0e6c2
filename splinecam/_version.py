"""The package version (one place: pyproject reads it, the file format records it)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
