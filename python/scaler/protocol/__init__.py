"""scaler's wire protocol (docs/protocol.md): one frame = kind byte + msgpack map.

Every message is a small class with its fields in the order Go's msgp writes
them, so encoding a message built here gives exactly the bytes Go would send.
"""

from scaler.protocol.messages import *  # noqa: F401,F403
from scaler.protocol.messages import __all__  # noqa: F401
