import abc
from typing import Any


class Serializer(metaclass=abc.ABCMeta):
    """How a client turns functions, arguments and results into bytes and back.

    The serializer instance itself is cloudpickled and stored in object storage, so workers use
    the same one for the task's function, arguments and return value. Its class must be importable
    on the workers or picklable by value. Exceptions raised by tasks always travel as plain pickles.
    """

    @staticmethod
    @abc.abstractmethod
    def serialize(obj: Any) -> bytes:
        raise NotImplementedError()

    @staticmethod
    @abc.abstractmethod
    def deserialize(payload: bytes) -> Any:
        raise NotImplementedError()
