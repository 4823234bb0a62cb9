"""Compatibility names for code that imported parts of upstream's Python scheduler."""
