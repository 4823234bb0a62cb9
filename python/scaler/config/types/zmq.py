import dataclasses
import enum
from typing import Optional

from scaler.config.mixins import ConfigType


class ZMQType(enum.Enum):
    inproc = "inproc"
    ipc = "ipc"
    tcp = "tcp"

    @staticmethod
    def allowed_types():
        return {member.value for member in ZMQType}


@dataclasses.dataclass
class ZMQConfig(ConfigType):
    """An address such as ``tcp://127.0.0.1:8516`` or ``ipc:///tmp/scaler.sock``."""

    type: ZMQType
    host: str
    port: Optional[int] = None

    def __post_init__(self):
        if not isinstance(self.type, ZMQType):
            raise TypeError(f"Invalid zmq type {self.type}, available types are: {ZMQType.allowed_types()}")
        if not isinstance(self.host, str):
            raise TypeError(f"Host should be string, given {self.host}")
        has_port = self.port is not None
        if self.type == ZMQType.tcp and not has_port:
            raise ValueError(f"type {self.type.value} should have `port`")
        if self.type != ZMQType.tcp and has_port:
            raise ValueError(f"type {self.type.value} should not have `port`")
        if has_port and not isinstance(self.port, int):
            raise TypeError(f"Port should be integer, given {self.port}")

    def to_address(self) -> str:
        if self.type == ZMQType.tcp:
            return f"tcp://{self.host}:{self.port}"
        return f"{self.type.value}://{self.host}"

    @classmethod
    def from_string(cls, value: str) -> "ZMQConfig":
        scheme, sep, rest = value.partition("://")
        if not sep:
            raise ValueError("valid ZMQ config should be like tcp://127.0.0.1:12345")
        if scheme not in ZMQType.allowed_types():
            raise ValueError(f"supported ZMQ types are: {ZMQType.allowed_types()}")
        kind = ZMQType(scheme)
        if kind != ZMQType.tcp:
            return cls(kind, rest)
        host, colon, port = rest.rpartition(":")
        if not colon or not host:
            raise ValueError(f"valid ZMQ config should be like tcp://127.0.0.1:12345, given {value!r}")
        try:
            number = int(port)
        except ValueError:
            raise ValueError(f"cannot convert '{port}' to port number") from None
        return cls(kind, host, number)

    def __str__(self) -> str:
        return self.to_address()

    def __repr__(self) -> str:
        return self.to_address()
