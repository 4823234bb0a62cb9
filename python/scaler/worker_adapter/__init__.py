"""Worker adapters: HTTP webhooks that start and stop workers for the scheduler's scaling policy.

``scaler.worker_adapter.native.NativeWorkerAdapter`` runs the scaler binary's
``worker_adapter_native`` role as a child process (docs/autoscaling.md).
"""
