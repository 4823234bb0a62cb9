"""Find or build the Go ``scaler`` binary for tests that need a server."""

import os
import random
import shutil
import socket
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


# Test servers listen on ports below Linux's ephemeral range (32768 and up by default), so an
# outgoing connection of another test cannot take a port between our choice and the bind. A
# scheduler on P also binds P+1 (object storage) and P+2 (monitor): every port handed out starts a
# run of three free ones.
_PORT_LOW, _PORT_HIGH = 20000, 32000
_rng = random.Random()


def free_port(span: int = 3) -> int:
    """A port P on 127.0.0.1 with P .. P+span-1 free a moment ago, outside the ephemeral range."""
    for _ in range(1000):
        port = _rng.randrange(_PORT_LOW, _PORT_HIGH - span)
        if all(_bindable(q) for q in range(port, port + span)):
            return port
    raise RuntimeError(f"no {span} consecutive free ports on 127.0.0.1 in {_PORT_LOW}-{_PORT_HIGH}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
