"""scaler: the Python side of OpenGRIS Scaler's engine rebuilt in Go."""

__version__ = "0.1.0"
