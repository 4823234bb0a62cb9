"""Build step of the Python package: ``pip install ./python`` also builds the Go binary.

The binary (``scaler``, every role in one executable) is built from the repository this
directory belongs to and installed into the environment's ``bin/`` as a data file, next to the
``scaler_*`` commands (console scripts that run it). Without Go, or outside the repository, or
with ``SCALER_SKIP_GO_BUILD=1``, the package installs without it and finds the binary through
``$SCALER_BINARY`` or ``PATH`` instead; the reason is printed (``pip install -v`` shows it).
The Go build cache (``go env GOCACHE``) makes a repeated install cost only the link.
"""

import os
import shutil
import subprocess
import sys

from setuptools import setup

try:
    from setuptools.command.install_data import install_data
except ImportError:  # setuptools before 70 has no wrapper of its own; importing setuptools made distutils its copy
    from distutils.command.install_data import install_data
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)


def _note(message: str) -> None:
    print(f"scaler: {message}", file=sys.stderr)


def build_go_binary(output_dir: str):
    """Build the binary into output_dir; returns its path, or None (with the reason printed)."""
    if os.environ.get("SCALER_SKIP_GO_BUILD"):
        _note("SCALER_SKIP_GO_BUILD is set: not building the Go binary")
        return None
    if not os.path.isfile(os.path.join(REPOSITORY, "go.mod")):
        _note(f"no go.mod in {REPOSITORY}: not building the Go binary")
        return None
    go = shutil.which("go")
    if go is None:
        _note("go is not on PATH: not building the Go binary (set SCALER_BINARY or put scaler on PATH)")
        return None
    os.makedirs(output_dir, exist_ok=True)
    output = os.path.join(output_dir, "scaler")
    env = dict(os.environ, CGO_ENABLED="1")
    # -buildvcs=false: the checkout may be a worktree or owned by another user; no VCS stamp needed.
    command = [go, "build", "-buildvcs=false", "-o", output, "."]
    _note(f"building the Go binary: {' '.join(command)} (in {REPOSITORY})")
    result = subprocess.run(command, cwd=REPOSITORY, env=env)
    if result.returncode != 0:
        _note("go build failed (libzmq headers and pkg-config are needed: bash .ci/setup); installing without it")
        return None
    return output


class InstallDataWithBinary(install_data):
    """install_data that adds the freshly built binary to ``bin/`` (the scripts directory)."""

    def run(self):
        build_dir = os.path.join(HERE, "build", "go")
        binary = build_go_binary(build_dir)
        self.data_files = list(self.data_files or [])
        if binary is not None:
            self.data_files.append(("bin", [binary]))
        super().run()


class DistributionWithBinary(Distribution):
    """Always run install_data (wheel and editable builds skip it when no data files are declared)."""

    def has_data_files(self):
        return True

    def has_data(self):  # what editable_wheel asks
        return True


setup(distclass=DistributionWithBinary, cmdclass={"install_data": InstallDataWithBinary}, data_files=[])
