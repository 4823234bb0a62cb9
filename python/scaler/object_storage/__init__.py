"""The object storage server (1.12.5: a C++ extension; here: the Go binary's ``object_storage_server`` role)."""
