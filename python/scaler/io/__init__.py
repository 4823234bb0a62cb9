"""Input/output helpers shared by the client and the processor: identifiers and
a synchronous object storage client."""

from scaler.io.ids import (  # noqa: F401
    OBJECT_ID_LENGTH,
    TASK_ID_LENGTH,
    client_id,
    new_object_id,
    new_task_id,
    serializer_object_id,
    worker_id,
)
from scaler.io.storage import ObjectStorageClient, ObjectStorageError  # noqa: F401
