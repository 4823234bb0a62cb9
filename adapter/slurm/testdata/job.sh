#!/bin/sh
# scaler worker job, submitted by scaler_worker_adapter_slurm.
# The worker ids are derived from the job id; the adapter announced the
# same ones to the scheduler.
J="${SLURM_JOB_ID:?not started by Slurm}"
exec '/shared/bin/scaler' cluster 'tcp://login1:6378' \
  --num-of-workers 2 \
  --worker-names "slurm-$J-0,slurm-$J-1" \
  --worker-ids "$J|Worker|slurm-$J-0|00112233445566778899aabbccddeeff,$J|Worker|slurm-$J-1|00112233445566778899aabbccddeeff" \
  --python '/path with space/it'\''s/python' \
  --per-worker-task-queue-size 10 \
  --heartbeat-interval-seconds 2 \
  --task-timeout-seconds 0 \
  --death-timeout-seconds 300 \
  --object-storage-address 'tcp://login1:6379' \
  --per-worker-capabilities 'linux,cpu=2' \
  --preload 'pkg.mod:init('\''it'\'''\''s'\'')' \
  --logging-level 'INFO'
