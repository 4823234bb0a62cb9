import pickle
from typing import Any

import cloudpickle

from scaler.client.serializer.mixins import Serializer

# Values of these exact types pickle the same way with pickle and cloudpickle (by value, no
# functions or classes inside), and pickle.dumps is ~10x cheaper than building a cloudpickle
# Pickler: this is the common case of small task arguments and results.
_PLAIN = frozenset((int, float, str, bytes, bool, type(None)))
_HIGHEST = pickle.HIGHEST_PROTOCOL
_dumps = pickle.dumps


class DefaultSerializer(Serializer):
    """cloudpickle at the highest pickle protocol."""

    @staticmethod
    def serialize(obj: Any) -> bytes:
        if type(obj) in _PLAIN:
            return _dumps(obj, _HIGHEST)
        return cloudpickle.dumps(obj, protocol=_HIGHEST)

    # cloudpickle.loads itself (it is pickle.loads): no Python frame per call on the hot paths.
    deserialize = staticmethod(cloudpickle.loads)
