import enum


class AllocatePolicy(enum.Enum):
    """How the scheduler places tasks on workers (``--allocate-policy``)."""

    even = "even"
    capability = "capability"

    def __str__(self) -> str:
        return self.name
