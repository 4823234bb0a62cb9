"""``from scaler.about import __version__`` as in 1.12.5 (the version of this package, not 1.12.5)."""

from scaler import __version__

__all__ = ["__version__"]
