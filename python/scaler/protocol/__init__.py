"""scaler's wire protocol (docs/protocol.md): one frame = kind byte + msgpack map.

``messages`` declares every message: a small class with its fields in the order Go's msgp writes
them, so encoding a message built here gives exactly the bytes Go would send (held to Go's golden
frames by python/tests/test_protocol_golden.py). ``wire`` has the fast paths the client and the
processor use per task, all derived from those declarations (python/tests/test_protocol_wire.py).
"""

from scaler.protocol.messages import *  # noqa: F401,F403
from scaler.protocol.messages import __all__  # noqa: F401
