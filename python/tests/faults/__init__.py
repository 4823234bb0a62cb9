# A package, so that pytest imports this directory's modules as faults.<name> and its conftest.py
# does not clash with python/tests/conftest.py.
