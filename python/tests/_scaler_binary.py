"""Find or build the Go ``scaler`` binary for tests that need a server."""

import os
import shutil
import subprocess
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_built = None


def scaler_binary():
    """$SCALER_BINARY, else a fresh ``go build`` of the repo (cached per session), else None."""
    global _built
    env = os.environ.get("SCALER_BINARY")
    if env:
        return env
    if _built:
        return _built
    go = shutil.which("go")
    if go is None:
        return None
    out = os.path.join(tempfile.mkdtemp(prefix="scaler-test-bin-"), "scaler")
    subprocess.run([go, "build", "-o", out, "."], cwd=REPO, check=True)
    _built = out
    return out


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
