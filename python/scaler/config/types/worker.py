import dataclasses
from typing import Dict, List

from scaler.config.mixins import ConfigType


@dataclasses.dataclass
class WorkerNames(ConfigType):
    """Comma-separated worker names (``-wn a,b,c``)."""

    names: List[str]

    @classmethod
    def from_string(cls, value: str) -> "WorkerNames":
        return cls([name.strip() for name in value.split(",")] if value else [])

    def __str__(self) -> str:
        return ",".join(self.names)

    def __len__(self) -> int:
        return len(self.names)


@dataclasses.dataclass
class WorkerCapabilities(ConfigType):
    """``linux,gpu=2``: a name without a value has the value -1."""

    capabilities: Dict[str, int]

    @classmethod
    def from_string(cls, value: str) -> "WorkerCapabilities":
        result: Dict[str, int] = {}
        for item in value.split(",") if value else []:
            name, _, amount = item.partition("=")
            if amount == "":
                result[name.strip()] = -1
                continue
            try:
                result[name.strip()] = int(amount)
            except ValueError:
                raise ValueError(
                    f"Invalid capability value for '{name}'. Expected an integer, but got '{amount}'."
                ) from None
        return cls(result)

    def __str__(self) -> str:
        return ",".join(name if amount == -1 else f"{name}={amount}" for name, amount in self.capabilities.items())
