"""Scaler 1.12.5's configuration modules: defaults, value types, section dataclasses and the loader.

The Go binary parses its own command lines and TOML files; these modules are for Python programs
that build configurations the 1.12.5 way (``load_config(SchedulerConfig, path, args)``) and hand
them to the process wrappers in ``scaler.cluster``.
"""
