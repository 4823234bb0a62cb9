import dataclasses

from scaler.config.types.object_storage_server import ObjectStorageConfig


@dataclasses.dataclass
class ObjectStorageServerConfig:
    """The ``[object_storage_server]`` section (``scaler_object_storage_server``)."""

    object_storage_address: ObjectStorageConfig
