import abc


class ConfigType(metaclass=abc.ABCMeta):
    """A composite configuration value that is written as one string (an address, a list of names)."""

    @classmethod
    @abc.abstractmethod
    def from_string(cls, value: str) -> "ConfigType":
        raise NotImplementedError

    @abc.abstractmethod
    def __str__(self) -> str:
        raise NotImplementedError
