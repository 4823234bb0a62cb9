import dataclasses


@dataclasses.dataclass(frozen=True)
class ObjectReference:
    """An object stored once with ``Client.send_object`` and passed to many tasks by id.

    Honoured as a top-level positional argument of ``submit``/``submit_verbose``/``map`` and as a
    graph data node; anywhere else (e.g. inside a list) the task receives this reference itself.
    """

    name: bytes
    size: int
    object_id: bytes

    def __repr__(self) -> str:
        return f"ObjectReference(name={self.name!r}, size={self.size} bytes, id={self.object_id.hex()})"

    def __hash__(self) -> int:
        return hash(self.object_id)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ObjectReference):
            return NotImplemented
        return self.object_id == other.object_id
