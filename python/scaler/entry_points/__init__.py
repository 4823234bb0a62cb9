"""Upstream's ``scaler_*`` commands: each ``main()`` runs the Go binary's role with this process's arguments.

1.12.5's ``main()`` parsed argv with argparse and ran the role in Python; here the binary parses
the same command line (same flags, same TOML sections) and the process becomes it (``exec``), so
signals and the exit status are the binary's.
"""

import os
import sys
from typing import List, Optional

from scaler.cluster._process import find_binary


def run_role(program: str, argv: Optional[List[str]] = None) -> None:
    """Replace this process with ``scaler_<role>`` (argv[0] names the role for the multicall binary)."""
    try:
        binary = find_binary()
    except FileNotFoundError as e:
        print(f"{program}: error: {e}", file=sys.stderr)
        sys.exit(2)
    arguments = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # A cluster's processors run on this interpreter, which has the scaler package, unless
    # SCALER_PYTHON or --python says otherwise.
    env = dict(os.environ)
    env.setdefault("SCALER_PYTHON", sys.executable)
    os.execve(binary, [program, *arguments], env)
