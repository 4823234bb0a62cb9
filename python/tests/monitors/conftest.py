"""Fixtures of the monitor tests: a process stack (faults.harness.Stack: real scaler processes, all
stopped at teardown) and a private tmux server to run scaler_top in."""

import os
import shutil
import subprocess
import uuid

import pytest

from faults.conftest import stack  # noqa: F401 (a fixture: the fault suite's, one definition)


class Tmux:
    """One tmux server on a private socket (-L), one 200x50 session running a plain shell."""

    def __init__(self, width: int = 200, height: int = 50):
        self.socket = f"scaler-top-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.width, self.height = width, height

    def cmd(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                             capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self) -> "Tmux":
        # A plain shell with a fixed prompt, so what top leaves behind is easy to read.
        self.cmd("new-session", "-d", "-x", str(self.width), "-y", str(self.height), "-s", "top",
                 "env PS1='$ ' bash --norc --noprofile")
        return self

    def type(self, text: str, enter: bool = False) -> None:
        self.cmd("send-keys", "-t", "top", "-l", text)
        if enter:
            self.cmd("send-keys", "-t", "top", "Enter")

    def key(self, name: str) -> None:
        """A named key (C-c, Enter) as tmux spells it."""
        self.cmd("send-keys", "-t", "top", name)

    def resize(self, width: int, height: int) -> None:
        self.cmd("resize-window", "-t", "top", "-x", str(width), "-y", str(height))

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-t", "top")

    def alternate_on(self) -> bool:
        return self.cmd("display-message", "-p", "-t", "top", "#{alternate_on}").strip() == "1"

    def close(self) -> None:
        # Killing the server hangs up the pane, which ends a scaler_top still in it. The server
        # leaves its socket file behind; remove it so repeated runs do not pile them up.
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)
        path = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", self.socket)
        try:
            os.unlink(path)
        except OSError:
            pass


@pytest.fixture
def tmux():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (.ci/setup installs it)")
    t = Tmux().start()
    try:
        yield t
    finally:
        t.close()
