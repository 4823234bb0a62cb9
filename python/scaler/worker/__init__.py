"""The Python side of a scaler worker: the processor process that the Go worker
agent starts to run task functions (``python -m scaler.worker.processor``)."""
